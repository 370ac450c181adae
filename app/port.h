#ifndef RS_PORT_H
#define RS_PORT_H

#include <stdint.h>

#include <rte_mempool.h>

/* Can the port spread nq RX queues by RSS? */
int port_can_rss(uint16_t port, unsigned nq);
/* Configure and start the port with nq RX queues (symmetric RSS when nq > 1), promiscuous.
 * Returns 0, or -1 with a message on stderr. */
int port_start(uint16_t port, unsigned nq, struct rte_mempool *pool);
void port_stop(uint16_t port);
/* Is it DPDK's pcap device (whose RX timestamp is the capture time in µs)? */
int port_is_pcap(uint16_t port);

#endif
