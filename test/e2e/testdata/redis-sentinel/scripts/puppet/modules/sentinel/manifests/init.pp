# class sentinel: /etc/redis/sentinel.conf from the node's configuration.
class sentinel (
  String $monitor,
  Integer $port = 26379,
  Integer $down_after_milliseconds = 5000,
  Array[String] $peers = [],
) {
  package { 'redis-sentinel': ensure => installed }
  file { '/etc/redis/sentinel.conf':
    content => template('sentinel/sentinel.conf.erb'),
    require => Package['redis-sentinel'],
    notify  => Service['redis-sentinel'],
  }
  service { 'redis-sentinel': ensure => running, enable => true }
}
