#include "shim.h"

int dsrlb_errno(void) { return rte_errno; }
unsigned dsrlb_lcore_id(void) { return rte_lcore_id(); }
uint64_t dsrlb_tsc(void) { return rte_get_tsc_cycles(); }

uint16_t dsrlb_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t dsrlb_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

struct rte_mbuf *dsrlb_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }

int dsrlb_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned n)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, n);
}

void dsrlb_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
char *dsrlb_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
int dsrlb_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
unsigned dsrlb_mempool_avail(const struct rte_mempool *mp) { return rte_mempool_avail_count(mp); }
void dsrlb_prefetch0(const void *p) { rte_prefetch0(p); }

unsigned dsrlb_ring_enqueue_burst(struct rte_ring *r, struct rte_mbuf **pkts, unsigned n)
{
	return rte_ring_enqueue_burst(r, (void *const *)pkts, n, NULL);
}

unsigned dsrlb_ring_dequeue_burst(struct rte_ring *r, struct rte_mbuf **pkts, unsigned n)
{
	return rte_ring_dequeue_burst(r, (void **)pkts, n, NULL);
}

uint64_t dsrlb_rss_ip_l4(void) { return RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP; }
uint64_t dsrlb_ol_rx_rss_hash(void) { return RTE_MBUF_F_RX_RSS_HASH; }
uint64_t dsrlb_ol_tx_ipv4(void) { return RTE_MBUF_F_TX_IPV4; }
uint64_t dsrlb_ol_tx_ip_cksum(void) { return RTE_MBUF_F_TX_IP_CKSUM; }
uint64_t dsrlb_ol_rx_ip_cksum_bad(void) { return RTE_MBUF_F_RX_IP_CKSUM_BAD; }
uint64_t dsrlb_ol_rx_l4_cksum_bad(void) { return RTE_MBUF_F_RX_L4_CKSUM_BAD; }

uint32_t dsrlb_mbuf_rss(const struct rte_mbuf *m) { return m->hash.rss; }

void dsrlb_mbuf_set_tx_offload(struct rte_mbuf *m, uint64_t flags, uint16_t l2_len, uint16_t l3_len)
{
	m->ol_flags |= flags;
	m->l2_len = l2_len;
	m->l3_len = l3_len;
}

int dsrlb_link_get(uint16_t port, uint32_t *speed_mbps, int *up, int *full_duplex)
{
	struct rte_eth_link link;
	int rc = rte_eth_link_get_nowait(port, &link);
	if (rc != 0)
		return rc;
	*speed_mbps = link.link_speed;
	*up = link.link_status == RTE_ETH_LINK_UP;
	*full_duplex = link.link_duplex == RTE_ETH_LINK_FULL_DUPLEX;
	return 0;
}
