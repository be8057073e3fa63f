# Class: supervisor
# Runs a storm supervisor once class storm has written storm.yaml.
class supervisor (
  String $childopts = '-Xmx256m',
) {
  Class['storm'] -> Class['supervisor']
  file { '/etc/default/storm-supervisor':
    content => "SUPERVISOR_CHILDOPTS=\"${childopts}\"\n",
  }
  service { 'storm-supervisor':
    ensure    => running,
    enable    => true,
    subscribe => [File['/etc/default/storm-supervisor'], Class['storm']],
  }
}
