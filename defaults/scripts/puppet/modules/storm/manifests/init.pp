# Class: storm
# storm.yaml, shared by nimbus and supervisor nodes. The role classes (nimbus,
# supervisor) order themselves after it.
class storm (
  Array[String] $zk_servers,
  String $zk_root,
  Array[String] $nimbus_seeds,
  String $nimbus_host = '',
  Integer $zk_port = 2181,
  String $local_hostname = $facts['networking']['ip'],
  String $local_dir = '/var/lib/storm',
  Integer $nimbus_thrift_port = 6627,
  Integer $ui_port = 8080,
  Array[Integer] $supervisor_slots_ports = [6700, 6701, 6702, 6703],
  String $worker_childopts = '-Xmx768m',
  Integer $topology_message_timeout_secs = 30,
  String $storm_home = '/opt/storm',
) {
  file { $local_dir:
    ensure => directory,
    owner  => 'storm',
  }
  file { "${storm_home}/conf/storm.yaml":
    content => template('storm/storm.yaml.erb'),
  }
  file { '/etc/storm/straas.env':
    content => "STORM_HOME=${storm_home}\nSTORM_VERSION=${facts['straas_version']}\n",
  }
}
