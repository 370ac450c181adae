#include "port.h"

#include <stdio.h>
#include <string.h>

#include <rte_ethdev.h>

#define RX_DESC 1024

/* 0x6D5A repeated makes Toeplitz symmetric: (a,b) and (b,a) land on one queue. */
static uint8_t sym_rss_key[52];

int port_can_rss(uint16_t port, unsigned nq)
{
    struct rte_eth_dev_info info;
    if (rte_eth_dev_info_get(port, &info) != 0)
        return 0;
    return info.max_rx_queues >= nq && info.flow_type_rss_offloads != 0;
}

int port_is_pcap(uint16_t port)
{
    struct rte_eth_dev_info info;
    return rte_eth_dev_info_get(port, &info) == 0 && info.driver_name &&
           strcmp(info.driver_name, "net_pcap") == 0;
}

int port_start(uint16_t port, unsigned nq, struct rte_mempool *pool)
{
    struct rte_eth_dev_info info;
    struct rte_eth_conf conf;
    int rc;

    memset(&conf, 0, sizeof(conf));
    if ((rc = rte_eth_dev_info_get(port, &info)) != 0) {
        fprintf(stderr, "rstscope: port %u: cannot read device info: %s\n", port, strerror(-rc));
        return -1;
    }
    if (nq > 1) {
        for (size_t i = 0; i < sizeof(sym_rss_key); i += 2) {
            sym_rss_key[i] = 0x6d;
            sym_rss_key[i + 1] = 0x5a;
        }
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_key = sym_rss_key;
        conf.rx_adv_conf.rss_conf.rss_key_len = info.hash_key_size ? info.hash_key_size : 40;
        conf.rx_adv_conf.rss_conf.rss_hf =
            (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    }
    /* A sensor never transmits, but ethdev wants a TX queue on some drivers. */
    if ((rc = rte_eth_dev_configure(port, (uint16_t)nq, 1, &conf)) != 0) {
        fprintf(stderr, "rstscope: port %u (%s): configure with %u queue(s) failed: %s\n", port,
                info.driver_name, nq, strerror(-rc));
        return -1;
    }
    uint16_t nb_rxd = RX_DESC, nb_txd = 512;
    rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rxd, &nb_txd);
    int sid = rte_eth_dev_socket_id(port);
    unsigned socket = sid < 0 ? (unsigned)SOCKET_ID_ANY : (unsigned)sid;
    for (unsigned q = 0; q < nq; q++) {
        rc = rte_eth_rx_queue_setup(port, (uint16_t)q, nb_rxd, socket, NULL, pool);
        if (rc != 0) {
            fprintf(stderr, "rstscope: port %u: RX queue %u setup failed: %s\n", port, q,
                    strerror(-rc));
            return -1;
        }
    }
    rc = rte_eth_tx_queue_setup(port, 0, nb_txd, socket, NULL);
    if (rc != 0) {
        fprintf(stderr, "rstscope: port %u: TX queue setup failed: %s\n", port, strerror(-rc));
        return -1;
    }
    if ((rc = rte_eth_dev_start(port)) != 0) {
        fprintf(stderr, "rstscope: port %u: start failed: %s\n", port, strerror(-rc));
        return -1;
    }
    rte_eth_promiscuous_enable(port); /* a mirror port receives frames for other MACs */
    return 0;
}

void port_stop(uint16_t port)
{
    rte_eth_dev_stop(port);
    rte_eth_dev_close(port);
}
