/*
 * What bindgen cannot reach in DPDK 22.11: static inline fast-path functions,
 * thread-local rte_errno and function-like macros. Each wrapper is a plain
 * exported function compiled at -O3 with DPDK's own cflags.
 */
#ifndef DSRLB_SHIM_H
#define DSRLB_SHIM_H

#include <stdint.h>
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_errno.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_bus_vdev.h>
#include <rte_ring.h>
#include <rte_eth_ring.h>

int dsrlb_errno(void);
unsigned dsrlb_lcore_id(void);
uint64_t dsrlb_tsc(void);

uint16_t dsrlb_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t dsrlb_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);

struct rte_mbuf *dsrlb_pktmbuf_alloc(struct rte_mempool *mp);
int dsrlb_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned n);
void dsrlb_pktmbuf_free(struct rte_mbuf *m);
char *dsrlb_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
int dsrlb_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
unsigned dsrlb_mempool_avail(const struct rte_mempool *mp);
void dsrlb_prefetch0(const void *p);

/* rte_ring's burst calls are static inline; these move mbuf pointers. */
unsigned dsrlb_ring_enqueue_burst(struct rte_ring *r, struct rte_mbuf **pkts, unsigned n);
unsigned dsrlb_ring_dequeue_burst(struct rte_ring *r, struct rte_mbuf **pkts, unsigned n);

/* RSS on IPv4/IPv6 addresses plus TCP/UDP ports (the macros are RTE_BIT64 expressions). */
uint64_t dsrlb_rss_ip_l4(void);
/* Offload flag bits, also RTE_BIT64 macros. */
uint64_t dsrlb_ol_rx_rss_hash(void);
uint64_t dsrlb_ol_tx_ipv4(void);
uint64_t dsrlb_ol_tx_ip_cksum(void);
uint64_t dsrlb_ol_rx_ip_cksum_bad(void);
uint64_t dsrlb_ol_rx_l4_cksum_bad(void);

/* Fields inside anonymous unions and bitfields of rte_mbuf. */
uint32_t dsrlb_mbuf_rss(const struct rte_mbuf *m);
void dsrlb_mbuf_set_tx_offload(struct rte_mbuf *m, uint64_t flags, uint16_t l2_len, uint16_t l3_len);

/* rte_eth_link is a bitfield struct: flatten it. */
int dsrlb_link_get(uint16_t port, uint32_t *speed_mbps, int *up, int *full_duplex);

#endif
