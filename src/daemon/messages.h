/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* MESSAGE_ID= values of the events an admin searches for; each has an entry
 * in catalog/meshd.catalog so `journalctl -x` explains it. Never reuse one. */
#define MESSAGE_PEER_ONLINE      "ea6d2ea53f2f4e52b57968d9edf2f504"
#define MESSAGE_PEER_OFFLINE     "73cb67a9744449ec9808e6c4972051ee"
#define MESSAGE_MESH_ONLINE      "7377ce66f20842f9810bce7f6c4ed846"
#define MESSAGE_ONLINE_TIMEOUT   "8cf5ed6ea9944d4bb2b606b19c8f1091"
#define MESSAGE_ENDPOINT_CHANGED "d179d0ac67a94a5d8946b2ef80240314"
#define MESSAGE_RELAY_FALLBACK   "5f9972a902a34975afe68e90fe46cab2"
#define MESSAGE_KEY_CREATED      "eec5817036f3455984e2028796a041c3"
#define MESSAGE_NODE_REMOVED     "6e0d0a66ece54e18bd1b2cf2e4be8024"
#define MESSAGE_PATH_DIRECT      "b91d8f64b18d48b2825eae66df8fe523"
#define MESSAGE_CERT_ISSUED      "b08369b3a55747b4a40e11f4d6dd8c31"
#define MESSAGE_CERT_REFUSED     "4cd8de5c1a12458695733568dc92f97c"
#define MESSAGE_CERT_RELOAD      "c0abd9c43cce4cfb8763d1d29e5ac795"
#define MESSAGE_NETMAP_REFUSED   "f67aaf6854d7417791d22c785add4da1"
#define MESSAGE_CA_REFUSED       "23ba7863de1a4a2183b5432e2589dac0"
#define MESSAGE_STATE_CORRUPT    "e567f6e5110344968122d3db51413a57"
#define MESSAGE_PINS_ADOPTED     "78695f8637a8496bb61765c3308a7e2e"
#define MESSAGE_HUB_TLS          "4b40786330324476a2169841319058da"
#define MESSAGE_HUB_UDP          "c95b9e90c0084ddca9c98300c1b5f42e"
