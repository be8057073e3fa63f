# Class: zookeeper
# Configures and runs a zookeeper server from the options of app/zookeeper/<version>.
class zookeeper (
  Integer $client_port = 2181,
  Integer $quorum_port = 2888,
  Integer $election_port = 3888,
  String $data_dir = '/var/lib/zookeeper',
  Integer $tick_time = 2000,
  Integer $init_limit = 10,
  Integer $sync_limit = 5,
  Integer $max_client_cnxns = 60,
  Integer $autopurge_snap_retain_count = 3,
  Integer $autopurge_purge_interval = 24,
  Integer $heap_mb = 1024,
  Array[String] $four_letter_words = [],
  Integer $admin_server_port = 0,
  Array[String] $servers = [],
  Integer $myid = 1,
) {
  file { $data_dir:
    ensure => directory,
    owner  => 'zookeeper',
  }
  file { "${data_dir}/myid":
    content => "${myid}\n",
    owner   => 'zookeeper',
    notify  => Service['zookeeper'],
  }
  file { '/etc/zookeeper/conf/zoo.cfg':
    content => template('zookeeper/zoo.cfg.erb'),
    notify  => Service['zookeeper'],
  }
  file { '/etc/zookeeper/conf/java.env':
    content => "export JVMFLAGS=\"-Xmx${heap_mb}m -Xms${heap_mb}m\"\n",
    notify  => Service['zookeeper'],
  }
  service { 'zookeeper':
    ensure => running,
    enable => true,
  }
}
