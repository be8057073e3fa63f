# Class: nimbus
# Runs storm nimbus (and the UI) once class storm has written storm.yaml.
class nimbus (
  String $childopts = '-Xmx1024m',
  Boolean $ui_enabled = true,
) {
  Class['storm'] -> Class['nimbus']
  file { '/etc/default/storm-nimbus':
    content => "NIMBUS_CHILDOPTS=\"${childopts}\"\n",
  }
  service { 'storm-nimbus':
    ensure    => running,
    enable    => true,
    subscribe => [File['/etc/default/storm-nimbus'], Class['storm']],
  }
  service { 'storm-ui':
    ensure => $ui_enabled ? { true => running, default => stopped },
    enable => $ui_enabled,
  }
}
