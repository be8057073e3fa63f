# Class: kafka
# Configures and runs a kafka broker from the options of app/kafka/<version>.
class kafka (
  Integer $broker_id,
  String $zk_list,
  String $zk_chroot = '',
  String $advertised_host = $facts['networking']['ip'],
  Integer $port = 9092,
  String $log_dirs = '/var/lib/kafka',
  Integer $num_partitions = 3,
  Integer $default_replication_factor = 2,
  Integer $log_retention_hours = 168,
  Integer $log_segment_bytes = 1073741824,
  Integer $num_network_threads = 3,
  Integer $num_io_threads = 8,
  Integer $message_max_bytes = 1000012,
  Boolean $auto_create_topics_enable = true,
  Boolean $delete_topic_enable = true,
  String $heap_opts = '-Xmx1G -Xms1G',
  Integer $min_insync_replicas = 1,
  String $kafka_home = '/opt/kafka',
) {
  file { $log_dirs:
    ensure => directory,
    owner  => 'kafka',
  }
  file { "${kafka_home}/config/server.properties":
    content => template('kafka/server.properties.erb'),
    notify  => Service['kafka'],
  }
  # Guest commands (guestcmds/kafka-cmd) source this.
  file { '/etc/kafka/straas.env':
    content => "KAFKA_HOME=${kafka_home}\nKAFKA_VERSION=${facts['straas_version']}\nZK_CONNECT=${zk_list}\nBROKER_ID=${broker_id}\nPORT=${port}\n",
  }
  file { '/etc/default/kafka':
    content => "KAFKA_HEAP_OPTS=\"${heap_opts}\"\n",
    notify  => Service['kafka'],
  }
  service { 'kafka':
    ensure => running,
    enable => true,
  }
}
