// SPDX-License-Identifier: Apache-2.0 OR MIT
//
// Turnpike's kernel fast path for TURN channels (RFC 8656 §12, ChannelData).
//
// Direction 1, client -> peer: a UDP datagram from a client whose (client ip, client port,
// server port, channel number) is in `client_channels` loses its 4-byte ChannelData header and
// any padding, and leaves from the relay address to the peer.
// Direction 2, peer -> client: a UDP datagram from a peer to a relay address whose (peer ip,
// peer port, relay ip, relay port) is in `peer_channels` gains a ChannelData header and leaves
// from the server address to the client.
// Both are sent back out of the interface they came in on (XDP_TX, Ethernet addresses swapped).
// Anything else returns XDP_PASS untouched: userspace relays it, so correctness never depends on
// this program. The map layout is mirrored in crates/xdp/src/layout.rs: change both together.
//
// Addresses are 16 bytes for both families (IPv4 as ::ffff:a.b.c.d); ports, channel numbers and
// lengths are in network byte order, exactly as on the wire, so keys are built without swaps.
//
// Checksums are updated incrementally (RFC 1624): subtract what is removed or replaced, add what
// is new. One's-complement sums do not depend on byte order, so words are summed as loaded.
//
// Rebuild with crates/xdp/bpf/build.sh; the object is committed.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define FAMILY_V4 4
#define FAMILY_V6 6
#define FLAG_DISABLED 1
#define CHANNEL_HEADER 4
#define DEFAULT_MAX_PACKET 1500
#define MAP_ENTRIES 65536
// Larger datagrams pass to userspace. The bound also keeps packet offsets small enough for the
// verifier to accept bounds checks on pointers with a variable part.
#define MAX_UDP_LEN 0x3fff

// Indices of `stats`, mirrored in crates/xdp/src/stats.rs.
enum stat {
    STAT_TO_PEER = 0,
    STAT_TO_CLIENT = 1,
    STAT_PASS_NOT_UDP = 2,      // not IPv4/IPv6 UDP, IP options, extension headers, fragments
    STAT_PASS_NO_ENTRY = 3,     // UDP, but no installed channel matches
    STAT_PASS_MALFORMED = 4,    // bad lengths, bad ChannelData length, zero IPv6 checksum
    STAT_PASS_TOO_BIG = 5,      // peer -> client packet would exceed the configured maximum
    STAT_PASS_TTL = 6,          // TTL / hop limit would reach 0
    STAT_PASS_FAMILY = 7,       // entry crosses families (IPv4 <-> IPv6)
    STAT_PASS_DISABLED = 8,     // entry flagged disabled
    STAT_PASS_HEADROOM = 9,     // the driver refused to grow/shrink the packet
    STAT_PASS_PARTIAL_CSUM = 10, // sent from this host: the UDP checksum is not complete yet
    STAT_COUNT = 11,
};

struct client_key {
    __u8 client_addr[16];
    __be16 client_port;
    __be16 server_port;
    __be16 channel;
    __u8 family;
    __u8 pad;
};

struct client_value {
    __u8 relay_addr[16];
    __u8 peer_addr[16];
    __be16 relay_port;
    __be16 peer_port;
    __u8 family;
    __u8 flags;
    __u8 pad[2];
    __u64 packets;
    __u64 bytes; // application data bytes (ChannelData length), headers not counted
};

struct peer_key {
    __u8 peer_addr[16];
    __u8 relay_addr[16];
    __be16 peer_port;
    __be16 relay_port;
    __u8 family;
    __u8 pad[3];
};

struct peer_value {
    __u8 server_addr[16];
    __u8 client_addr[16];
    __be16 server_port;
    __be16 client_port;
    __be16 channel;
    __u8 family;
    __u8 flags;
    __u64 packets;
    __u64 bytes; // application data bytes, headers not counted
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MAP_ENTRIES);
    __type(key, struct client_key);
    __type(value, struct client_value);
} client_channels SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MAP_ENTRIES);
    __type(key, struct peer_key);
    __type(value, struct peer_value);
} peer_channels SEC(".maps");

// Index 0: the largest IP packet (header included) direction 2 may produce; 0 means 1500.
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, STAT_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} stats SEC(".maps");

// What the parser learnt of an IPv4 or IPv6 UDP datagram.
struct flow {
    __u8 family;
    __u8 ttl;         // TTL or hop limit
    __u16 l3_len;     // IP header length: 20 or 40
    __u16 udp_len;    // UDP length (header included), host order
    __u16 ip_payload; // IPv4 total length less the header, or IPv6 payload length, host order
    __u8 saddr[16];
    __u8 daddr[16];
    __be16 sport;
    __be16 dport;
    __be16 check;     // UDP checksum as received
};

static __always_inline void count(enum stat what)
{
    __u32 index = what;
    __u64 *counter = bpf_map_lookup_elem(&stats, &index);
    if (counter)
        *counter += 1; // per-CPU: no atomic needed
}

// Leaves the packet to the kernel's stack, untouched, and says why.
static __always_inline int pass(enum stat cause)
{
    count(cause);
    return XDP_PASS;
}

// One's-complement helpers. The accumulator stays far below 2^32 (at most ~40 words).
static __always_inline __u32 add_words(__u32 acc, const void *p, int words)
{
    const __u16 *w = p;
#pragma unroll
    for (int i = 0; i < words; i++)
        acc += w[i];
    return acc;
}

static __always_inline __u32 sub_words(__u32 acc, const void *p, int words)
{
    const __u16 *w = p;
#pragma unroll
    for (int i = 0; i < words; i++)
        acc += (__u16)~w[i];
    return acc;
}

static __always_inline __u32 sub_word(__u32 acc, __u16 w)
{
    return acc + (__u16)~w;
}

static __always_inline __u16 fold(__u32 acc)
{
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    return (__u16)acc;
}

static __always_inline void map_v4(__u8 out[16], const void *v4)
{
    __builtin_memset(out, 0, 10);
    out[10] = 0xff;
    out[11] = 0xff;
    __builtin_memcpy(out + 12, v4, 4);
}

// The new UDP checksum after replacing addresses, ports and length. `extra` is what the change
// of payload adds (already one's-complement negated for removed bytes). IPv4 checksum 0 means
// "none" and stays 0; a computed 0 is sent as 0xffff (RFC 768).
static __always_inline __be16 udp_check(const struct flow *f, const __u8 src[16], const __u8 dst[16],
                                        __be16 sport, __be16 dport, __be16 new_len, __u32 extra)
{
    if (f->family == FAMILY_V4 && f->check == 0)
        return 0;
    __be16 old_len = bpf_htons(f->udp_len);
    __u32 acc = (__u16)~f->check;
    acc = sub_words(acc, f->saddr, 8);
    acc = sub_words(acc, f->daddr, 8);
    acc = sub_word(acc, f->sport);
    acc = sub_word(acc, f->dport);
    acc = sub_word(acc, old_len); // pseudo-header length
    acc = sub_word(acc, old_len); // UDP header length
    acc = add_words(acc, src, 8);
    acc = add_words(acc, dst, 8);
    acc += sport;
    acc += dport;
    acc += new_len;
    acc += new_len;
    acc += extra;
    __u16 check = ~fold(acc);
    return check ? check : 0xffff;
}

// Whether the UDP checksum field holds only the pseudo-header sum: a datagram sent from this
// host (lo, veth) whose checksum the kernel left to "the device" (CHECKSUM_PARTIAL). Updating
// it would not give a valid checksum, and the kernel would then verify and drop the relayed
// datagram (found on lo: the receiver counted UdpInCsumErrors), so such datagrams go to
// userspace. A complete checksum equals this value by chance once in 65,535 datagrams, which
// then also go to userspace: harmless.
static __always_inline int partial_checksum(const struct flow *f)
{
    if (f->family == FAMILY_V4 && f->check == 0)
        return 0;
    __u32 acc = add_words(0, f->saddr, 8);
    acc = add_words(acc, f->daddr, 8);
    acc += bpf_htons(IPPROTO_UDP);
    acc += bpf_htons(f->udp_len);
    __u16 pseudo = fold(acc);
    __u16 check = f->check;
    // 0 and 0xffff are the same one's-complement number.
    return (pseudo == 0xffff ? 0 : pseudo) == (check == 0xffff ? 0 : check);
}

// Writes Ethernet (MACs swapped), IP and UDP headers at the start of the (moved) packet.
// `l3_old` is the IP header as received; only lengths, TTL, addresses and checksum change.
static __always_inline int write_headers(struct xdp_md *ctx, const struct ethhdr *eth_old,
                                         const void *l3_old, const struct flow *f,
                                         const __u8 src[16], const __u8 dst[16], __be16 sport,
                                         __be16 dport, __u16 udp_len, __be16 check)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return -1;
    __builtin_memcpy(eth->h_dest, eth_old->h_source, ETH_ALEN);
    __builtin_memcpy(eth->h_source, eth_old->h_dest, ETH_ALEN);
    eth->h_proto = eth_old->h_proto;
    struct udphdr *udp;
    if (f->family == FAMILY_V4) {
        struct iphdr ip;
        __builtin_memcpy(&ip, l3_old, sizeof(ip));
        ip.tot_len = bpf_htons(sizeof(ip) + udp_len);
        ip.ttl -= 1;
        __builtin_memcpy(&ip.saddr, src + 12, 4);
        __builtin_memcpy(&ip.daddr, dst + 12, 4);
        ip.check = 0;
        ip.check = ~fold(add_words(0, &ip, sizeof(ip) / 2));
        struct iphdr *out = (void *)(eth + 1);
        if ((void *)(out + 1) > end)
            return -1;
        __builtin_memcpy(out, &ip, sizeof(ip));
        udp = (void *)(out + 1);
    } else {
        struct ipv6hdr ip6;
        __builtin_memcpy(&ip6, l3_old, sizeof(ip6));
        ip6.payload_len = bpf_htons(udp_len);
        ip6.hop_limit -= 1;
        __builtin_memcpy(&ip6.saddr, src, 16);
        __builtin_memcpy(&ip6.daddr, dst, 16);
        struct ipv6hdr *out = (void *)(eth + 1);
        if ((void *)(out + 1) > end)
            return -1;
        __builtin_memcpy(out, &ip6, sizeof(ip6));
        udp = (void *)(out + 1);
    }
    if ((void *)(udp + 1) > end)
        return -1;
    udp->source = sport;
    udp->dest = dport;
    udp->len = bpf_htons(udp_len);
    udp->check = check;
    return 0;
}

// Direction 1: strip the ChannelData header (and padding), send to the peer.
static __always_inline int to_peer(struct xdp_md *ctx, const struct ethhdr *eth_old,
                                   const void *l3_old, const struct flow *f,
                                   struct client_value *v, const __u8 *payload, __u16 data_len)
{
    if (f->ttl <= 1)
        return pass(STAT_PASS_TTL);
    void *end = (void *)(long)ctx->data_end;
    __u16 payload_len = f->udp_len - sizeof(struct udphdr);
    __u16 pad = payload_len - CHANNEL_HEADER - data_len;

    // Subtract the ChannelData header and the padding from the checksum. The header sits at an
    // even offset of the UDP segment; a padding byte counts as the low byte of a loaded word
    // (little-endian load) at an even offset, the high byte at an odd one.
    __u32 extra = sub_words(0, payload, 2);
    const __u8 *pad_start = payload + CHANNEL_HEADER + (data_len & MAX_UDP_LEN);
#pragma unroll
    for (int i = 0; i < 3; i++) {
        if (i < pad) {
            const __u8 *b = pad_start + i;
            if ((void *)(b + 1) > end)
                return pass(STAT_PASS_MALFORMED);
            __u16 w = ((data_len + i) & 1) ? (__u16)(*b) << 8 : *b;
            extra = sub_word(extra, w);
        }
    }
    __u16 udp_len = sizeof(struct udphdr) + data_len;
    __be16 check = udp_check(f, v->relay_addr, v->peer_addr, v->relay_port, v->peer_port,
                             bpf_htons(udp_len), extra);

    // Trim padding and any Ethernet trailer first: on failure nothing has changed yet.
    long keep = sizeof(struct ethhdr) + f->l3_len + sizeof(struct udphdr) + CHANNEL_HEADER + data_len;
    long trim = (long)(end - (void *)(long)ctx->data) - keep;
    if (trim > 0 && bpf_xdp_adjust_tail(ctx, (int)-trim))
        return pass(STAT_PASS_HEADROOM);
    if (bpf_xdp_adjust_head(ctx, CHANNEL_HEADER))
        return XDP_DROP; // cannot happen (the packet holds the 4 bytes); the packet is torn
    if (write_headers(ctx, eth_old, l3_old, f, v->relay_addr, v->peer_addr, v->relay_port,
                      v->peer_port, udp_len, check))
        return XDP_DROP;
    __sync_fetch_and_add(&v->packets, 1);
    __sync_fetch_and_add(&v->bytes, data_len);
    count(STAT_TO_PEER);
    return XDP_TX;
}

// Direction 2: prepend a ChannelData header, send to the client.
static __always_inline int to_client(struct xdp_md *ctx, const struct ethhdr *eth_old,
                                     const void *l3_old, const struct flow *f,
                                     struct peer_value *v)
{
    if (f->ttl <= 1)
        return pass(STAT_PASS_TTL);
    __u16 data_len = f->udp_len - sizeof(struct udphdr);
    __u16 udp_len = f->udp_len + CHANNEL_HEADER;
    __u32 index = 0;
    __u32 *max = bpf_map_lookup_elem(&config, &index);
    __u32 max_packet = (max && *max) ? *max : DEFAULT_MAX_PACKET;
    if ((__u32)f->l3_len + udp_len > max_packet)
        return pass(STAT_PASS_TOO_BIG);

    __be16 channel_header[2] = {v->channel, bpf_htons(data_len)};
    __u32 extra = add_words(0, channel_header, 2);
    __be16 check = udp_check(f, v->server_addr, v->client_addr, v->server_port, v->client_port,
                             bpf_htons(udp_len), extra);

    void *end = (void *)(long)ctx->data_end;
    long keep = sizeof(struct ethhdr) + f->l3_len + f->udp_len;
    long trim = (long)(end - (void *)(long)ctx->data) - keep;
    if (trim > 0 && bpf_xdp_adjust_tail(ctx, (int)-trim))
        return pass(STAT_PASS_HEADROOM);
    if (bpf_xdp_adjust_head(ctx, -CHANNEL_HEADER))
        return pass(STAT_PASS_HEADROOM);
    if (write_headers(ctx, eth_old, l3_old, f, v->server_addr, v->client_addr, v->server_port,
                      v->client_port, udp_len, check))
        return XDP_DROP;
    void *data = (void *)(long)ctx->data;
    end = (void *)(long)ctx->data_end;
    __be16 *ch = data + sizeof(struct ethhdr) + f->l3_len + sizeof(struct udphdr);
    if ((void *)(ch + 2) > end)
        return XDP_DROP;
    ch[0] = channel_header[0];
    ch[1] = channel_header[1];
    __sync_fetch_and_add(&v->packets, 1);
    __sync_fetch_and_add(&v->bytes, data_len);
    count(STAT_TO_CLIENT);
    return XDP_TX;
}

// Looks the datagram up in both maps and relays it, or passes it.
// Why a datagram of an installed channel cannot be relayed, or 0 if it can: lengths that
// disagree, a checksum the program cannot update. Checked only after a map matched, so that the
// counters speak of installed channels alone, whatever else the interface carries.
static __always_inline int unrelayable(struct xdp_md *ctx, const struct flow *f,
                                       const struct udphdr *udp)
{
    void *end = (void *)(long)ctx->data_end;
    if (f->udp_len < sizeof(struct udphdr) || f->ip_payload != f->udp_len ||
        (void *)udp + f->udp_len > end)
        return STAT_PASS_MALFORMED;
    if (f->udp_len > MAX_UDP_LEN)
        return STAT_PASS_TOO_BIG;
    if (f->family == FAMILY_V6 && f->check == 0) // mandatory in IPv6 (RFC 8200 §8.1)
        return STAT_PASS_MALFORMED;
    if (partial_checksum(f))
        return STAT_PASS_PARTIAL_CSUM;
    return 0;
}

static __always_inline int relay_udp(struct xdp_md *ctx, const struct ethhdr *eth_old,
                                     const void *l3_old, const struct flow *f,
                                     const struct udphdr *udp)
{
    void *end = (void *)(long)ctx->data_end;
    const __u8 *payload = (const void *)(udp + 1);
    int cause;

    if ((void *)(payload + CHANNEL_HEADER) <= end && (payload[0] & 0xc0) == 0x40) {
        struct client_key key;
        __builtin_memset(&key, 0, sizeof(key));
        __builtin_memcpy(key.client_addr, f->saddr, 16);
        key.client_port = f->sport;
        key.server_port = f->dport;
        key.channel = *(const __be16 *)payload;
        key.family = f->family;
        struct client_value *v = bpf_map_lookup_elem(&client_channels, &key);
        if (v) {
            if (v->flags & FLAG_DISABLED)
                return pass(STAT_PASS_DISABLED);
            if (v->family != f->family)
                return pass(STAT_PASS_FAMILY);
            cause = unrelayable(ctx, f, udp);
            if (cause)
                return pass(cause);
            // RFC 8656 §12: the length field counts the data alone; over UDP, up to 3 bytes of
            // padding may follow it, nothing else.
            __u16 payload_len = f->udp_len - sizeof(struct udphdr);
            __u16 data_len = bpf_ntohs(*(const __be16 *)(payload + 2));
            if ((__u32)data_len + CHANNEL_HEADER > payload_len ||
                payload_len - CHANNEL_HEADER - data_len >= 4)
                return pass(STAT_PASS_MALFORMED);
            return to_peer(ctx, eth_old, l3_old, f, v, payload, data_len);
        }
    }

    struct peer_key key;
    __builtin_memset(&key, 0, sizeof(key));
    __builtin_memcpy(key.peer_addr, f->saddr, 16);
    __builtin_memcpy(key.relay_addr, f->daddr, 16);
    key.peer_port = f->sport;
    key.relay_port = f->dport;
    key.family = f->family;
    struct peer_value *v = bpf_map_lookup_elem(&peer_channels, &key);
    if (!v)
        return pass(STAT_PASS_NO_ENTRY);
    if (v->flags & FLAG_DISABLED)
        return pass(STAT_PASS_DISABLED);
    if (v->family != f->family)
        return pass(STAT_PASS_FAMILY);
    cause = unrelayable(ctx, f, udp);
    if (cause)
        return pass(cause);
    return to_client(ctx, eth_old, l3_old, f, v);
}

SEC("xdp")
int turnpike_relay(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return pass(STAT_PASS_NOT_UDP);
    struct ethhdr eth_old;
    __builtin_memcpy(&eth_old, eth, sizeof(eth_old));
    struct flow f;
    __builtin_memset(&f, 0, sizeof(f));
    struct udphdr *udp;

    if (eth->h_proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = (void *)(eth + 1);
        if ((void *)(ip + 1) > end)
            return pass(STAT_PASS_NOT_UDP);
        if (ip->ihl != 5 || ip->version != 4 || ip->protocol != IPPROTO_UDP ||
            (ip->frag_off & bpf_htons(0x3fff)))
            return pass(STAT_PASS_NOT_UDP);
        udp = (void *)(ip + 1);
        if ((void *)(udp + 1) > end)
            return pass(STAT_PASS_NOT_UDP);
        struct iphdr ip_old;
        __builtin_memcpy(&ip_old, ip, sizeof(ip_old));
        f.family = FAMILY_V4;
        f.ttl = ip->ttl;
        f.l3_len = sizeof(*ip);
        f.udp_len = bpf_ntohs(udp->len);
        f.ip_payload = bpf_ntohs(ip->tot_len) - sizeof(*ip);
        map_v4(f.saddr, &ip->saddr);
        map_v4(f.daddr, &ip->daddr);
        f.sport = udp->source;
        f.dport = udp->dest;
        f.check = udp->check;
        return relay_udp(ctx, &eth_old, &ip_old, &f, udp);
    }
    if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = (void *)(eth + 1);
        if ((void *)(ip6 + 1) > end)
            return pass(STAT_PASS_NOT_UDP);
        if (ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
            return pass(STAT_PASS_NOT_UDP);
        udp = (void *)(ip6 + 1);
        if ((void *)(udp + 1) > end)
            return pass(STAT_PASS_NOT_UDP);
        struct ipv6hdr ip6_old;
        __builtin_memcpy(&ip6_old, ip6, sizeof(ip6_old));
        f.family = FAMILY_V6;
        f.ttl = ip6->hop_limit;
        f.l3_len = sizeof(*ip6);
        f.udp_len = bpf_ntohs(udp->len);
        f.ip_payload = bpf_ntohs(ip6->payload_len);
        __builtin_memcpy(f.saddr, &ip6->saddr, 16);
        __builtin_memcpy(f.daddr, &ip6->daddr, 16);
        f.sport = udp->source;
        f.dport = udp->dest;
        f.check = udp->check;
        return relay_udp(ctx, &eth_old, &ip6_old, &f, udp);
    }
    return pass(STAT_PASS_NOT_UDP);
}

char LICENSE[] SEC("license") = "Apache-2.0 OR MIT";
