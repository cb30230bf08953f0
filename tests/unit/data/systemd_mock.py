'''python3-dbusmock template: the parts of systemd's Manager that acmed's deployer uses.

Run with: python3 -m dbusmock --template systemd_mock.py [-p JSON]
(on the system bus, i.e. DBUS_SYSTEM_BUS_ADDRESS).

ReloadOrRestartUnit(name, mode) returns a job path and emits
JobRemoved(id, job, unit, result) afterwards. Per-unit behaviour comes from the
JSON parameters or from the mock method SetUnitResult(unit, result):
  result "done" (default), "failed", "timeout", "canceled", ...: emitted as is;
  result "hang": no JobRemoved ever (the caller's timeout must fire);
  "early": [units]  emit JobRemoved before the method reply (a reordering a
                    client has to tolerate);
  "delay_ms": N     delay between the reply and JobRemoved (default 50);
  "delays": {unit: ms} per-unit delay;
  "marker_dir": DIR create DIR/<unit>.<jobid>.removed when JobRemoved is emitted.
Units named missing* are refused with org.freedesktop.systemd1.NoSuchUnit.
'''

import os

import dbus
from gi.repository import GLib

from dbusmock import MOCK_IFACE

BUS_NAME = 'org.freedesktop.systemd1'
MAIN_OBJ = '/org/freedesktop/systemd1'
MAIN_IFACE = 'org.freedesktop.systemd1.Manager'
SYSTEM_BUS = True


def load(mock, parameters):
    mock.next_job_id = 1
    mock.unit_results = {str(k): str(v) for k, v in dict(parameters.get('results', {})).items()}
    mock.early_units = {str(u) for u in parameters.get('early', [])}
    mock.delay_ms = int(parameters.get('delay_ms', 50))
    mock.unit_delays = {str(k): int(v) for k, v in dict(parameters.get('delays', {})).items()}
    mock.marker_dir = str(parameters.get('marker_dir', ''))
    mock.AddProperties(MAIN_IFACE, {'Version': 'v252-dbusmock'})


def _emit_removed(mock, job_id, job_path, unit, result):
    if mock.marker_dir:
        with open(os.path.join(mock.marker_dir, f'{unit}.{job_id}.removed'), 'w', encoding='ascii') as f:
            f.write(result + '\n')
    mock.EmitSignal(MAIN_IFACE, 'JobRemoved', 'uoss',
                    [dbus.UInt32(job_id), dbus.ObjectPath(job_path), unit, result])
    return False


@dbus.service.method(MAIN_IFACE, in_signature='', out_signature='')
def Subscribe(self):
    pass


@dbus.service.method(MAIN_IFACE, in_signature='', out_signature='')
def Unsubscribe(self):
    pass


@dbus.service.method(MAIN_IFACE, in_signature='ss', out_signature='o')
def ReloadOrRestartUnit(self, name, mode):
    name = str(name)
    if mode not in ('replace', 'fail', 'isolate', 'ignore-dependencies', 'ignore-requirements'):
        raise dbus.exceptions.DBusException(f'Invalid job mode {mode}',
                                            name='org.freedesktop.DBus.Error.InvalidArgs')
    if name.startswith('missing'):
        raise dbus.exceptions.DBusException(f'Unit {name} not found.',
                                            name='org.freedesktop.systemd1.NoSuchUnit')
    job_id = self.next_job_id
    self.next_job_id += 1
    job_path = f'{MAIN_OBJ}/job/{job_id}'
    result = self.unit_results.get(name, 'done')
    if result == 'hang':
        return dbus.ObjectPath(job_path)
    if name in self.early_units:
        _emit_removed(self, job_id, job_path, name, result)
    else:
        delay = self.unit_delays.get(name, self.delay_ms)
        GLib.timeout_add(delay, _emit_removed, self, job_id, job_path, name, result)
    return dbus.ObjectPath(job_path)


@dbus.service.method(MOCK_IFACE, in_signature='ss', out_signature='')
def SetUnitResult(self, unit, result):
    self.unit_results[str(unit)] = str(result)
