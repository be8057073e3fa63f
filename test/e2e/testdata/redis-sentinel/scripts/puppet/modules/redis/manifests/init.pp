# class redis: /etc/redis/redis.conf from the node's configuration.
class redis (
  Integer $port = 6379,
  String $maxmemory = '1gb',
  String $maxmemory_policy = 'noeviction',
  Boolean $appendonly = false,
  String $cluster_name = '',
  String $replicaof = '',
) {
  package { 'redis-server': ensure => installed }
  file { '/etc/redis/redis.conf':
    content => template('redis/redis.conf.erb'),
    require => Package['redis-server'],
    notify  => Service['redis-server'],
  }
  service { 'redis-server': ensure => running, enable => true }
}
