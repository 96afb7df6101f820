/*
 * Included before each of the kernel's samples/bpf programs that scripts/build-kernel-samples.sh
 * compiles: the kernel tree's build gives them kernel-internal names (u32, struct vlan_hdr,
 * __stringify, htons, ...) that a build against the system's uapi headers does not have.
 */
#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <stdbool.h>
#include <stdint.h>
#include <bpf/bpf_endian.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;

#define __force
#define AF_INET 2
#define AF_INET6 10
#define __stringify_1(x) #x
#define __stringify(x) __stringify_1(x)
#define htons(x) bpf_htons(x)
#define ntohs(x) bpf_ntohs(x)
#define htonl(x) bpf_htonl(x)
#define ntohl(x) bpf_ntohl(x)
#define cpu_to_be32(x) bpf_htonl(x)

/* The kernel's linux/if_vlan.h (not uapi); sockex2/3 declare their own. */
#ifndef SAMPLE_HAS_VLAN_HDR
struct vlan_hdr {
	__be16 h_vlan_TCI;
	__be16 h_vlan_encapsulated_proto;
};
#endif

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define max(a, b) ((a) > (b) ? (a) : (b))
#define min(a, b) ((a) < (b) ? (a) : (b))
