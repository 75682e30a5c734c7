// CPcap: libpcap as a Swift module (libpcap-dev; pkg-config libpcap). Nothing is wrapped: the
// whole of <pcap/pcap.h> is visible as is, for every tool that reads or writes captures.
#pragma once
#include <pcap/pcap.h>
