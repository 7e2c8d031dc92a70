# SPDX-License-Identifier: LGPL-2.1-or-later
"""A stand-in for systemd-resolved on a private bus (test_resolved.py).

Owns org.freedesktop.resolve1 on the bus at argv[1] and writes every call
of the link methods meshd uses, one JSON line each, to argv[2]:
{"method": "SetLinkDNS", "args": [...], "sender": ":1.5"}. Addresses are
written as text. With argv[3] == "refuse", every call gets
org.freedesktop.DBus.Error.AccessDenied (as resolved answers a caller
without CAP_NET_ADMIN).
Usage: fake_resolved.py BUS_ADDRESS LOG [refuse]
"""

import ipaddress
import json
import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

IFACE = "org.freedesktop.resolve1.Manager"


def address(family, raw):
    b = bytes(raw)
    return str(ipaddress.IPv4Address(b) if family == 2 else ipaddress.IPv6Address(b))


class Refused(dbus.DBusException):
    _dbus_error_name = "org.freedesktop.DBus.Error.AccessDenied"


class Manager(dbus.service.Object):
    def __init__(self, bus, log, refuse):
        super().__init__(bus, "/org/freedesktop/resolve1")
        self.log, self.refuse = log, refuse

    def record(self, method, sender, *args):
        self.log.write(json.dumps({"method": method, "args": list(args), "sender": sender}) + "\n")
        self.log.flush()
        if self.refuse:
            raise Refused("Access denied")

    @dbus.service.method(IFACE, in_signature="ia(iay)", sender_keyword="sender")
    def SetLinkDNS(self, ifindex, servers, sender=None):
        self.record("SetLinkDNS", sender, int(ifindex), [[int(f), address(f, a)] for f, a in servers])

    @dbus.service.method(IFACE, in_signature="ia(iayqs)", sender_keyword="sender")
    def SetLinkDNSEx(self, ifindex, servers, sender=None):
        self.record("SetLinkDNSEx", sender, int(ifindex),
                    [[int(f), address(f, a), int(p), str(n)] for f, a, p, n in servers])

    @dbus.service.method(IFACE, in_signature="ia(sb)", sender_keyword="sender")
    def SetLinkDomains(self, ifindex, domains, sender=None):
        self.record("SetLinkDomains", sender, int(ifindex), [[str(d), bool(r)] for d, r in domains])

    @dbus.service.method(IFACE, in_signature="ib", sender_keyword="sender")
    def SetLinkDefaultRoute(self, ifindex, enable, sender=None):
        self.record("SetLinkDefaultRoute", sender, int(ifindex), bool(enable))

    @dbus.service.method(IFACE, in_signature="is", sender_keyword="sender")
    def SetLinkDNSSEC(self, ifindex, mode, sender=None):
        self.record("SetLinkDNSSEC", sender, int(ifindex), str(mode))

    @dbus.service.method(IFACE, in_signature="i", sender_keyword="sender")
    def RevertLink(self, ifindex, sender=None):
        self.record("RevertLink", sender, int(ifindex))


def main():
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(sys.argv[1])
    log = open(sys.argv[2], "a")
    manager = Manager(bus, log, len(sys.argv) > 3 and sys.argv[3] == "refuse")
    # the name last: a caller that sees it finds the object there
    name = dbus.service.BusName("org.freedesktop.resolve1", bus)
    print("ready", flush=True)
    GLib.MainLoop().run()
    del manager, name


if __name__ == "__main__":
    main()
