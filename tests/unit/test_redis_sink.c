/*
 * The pure parts of the Redis sink: --redis endpoint parsing (malformed values rejected),
 * cluster hash slots (Redis's reference values), sensor names, and the field list (every cause
 * and overload signal by name, no duplicates). Delivery against a real redis-server is covered
 * by tests/integration/redis_*.sh.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "redis_sink.h"

Test(redis_endpoint, accepts_host_port_ipv6_and_unix)
{
    struct rs_endpoint ep;
    char err[128];
    cr_assert_eq(rs_endpoint_parse("127.0.0.1:6379", &ep, err, sizeof(err)), 0);
    cr_assert_str_eq(ep.host, "127.0.0.1");
    cr_assert_eq(ep.port, 6379);
    cr_assert_eq(ep.is_unix, 0);
    cr_assert_eq(rs_endpoint_parse("redis-1.example.net:1", &ep, err, sizeof(err)), 0);
    cr_assert_str_eq(ep.host, "redis-1.example.net");
    cr_assert_eq(rs_endpoint_parse("[::1]:65535", &ep, err, sizeof(err)), 0);
    cr_assert_str_eq(ep.host, "::1");
    cr_assert_eq(ep.port, 65535);
    cr_assert_eq(rs_endpoint_parse("/run/redis/redis.sock", &ep, err, sizeof(err)), 0);
    cr_assert_eq(ep.is_unix, 1);
    cr_assert_str_eq(ep.host, "/run/redis/redis.sock");
}

Test(redis_endpoint, rejects_malformed_values)
{
    static const char *bad[] = {
        "",          "localhost",  ":6379",   "host:",
        "host:0",    "host:65536", "host:-1", "host:+1",
        "host:12ab", "h st:1",     "h{x}:1",  "[::1:6379",
        "[::1]6379", "[zz]:1",     "[]:1",    "host:99999999999999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rs_endpoint ep;
        char err[128] = "";
        cr_assert_eq(rs_endpoint_parse(bad[i], &ep, err, sizeof(err)), -1, "'%s' accepted", bad[i]);
        cr_assert_neq(err[0], '\0', "no reason for '%s'", bad[i]);
    }
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    struct rs_endpoint ep;
    char err[128];
    cr_assert_eq(rs_endpoint_parse(longpath, &ep, err, sizeof(err)), -1);
    cr_assert_eq(rs_endpoint_parse(NULL, &ep, err, sizeof(err)), -1);
}

Test(redis_slot, matches_redis_reference_values)
{
    /* CRC16/XMODEM("123456789") = 0x31C3 (Redis cluster spec); 0x31C3 & 16383 = 12739. */
    cr_assert_eq(rs_key_slot("123456789", 9), 12739);
    /* Measured on redis-server 7.0.15 (CLUSTER KEYSLOT), see ecosystem.md 2.6. */
    cr_assert_eq(rs_key_slot("rstscope:{s01}:tot", 18), 8895);
    cr_assert_eq(rs_key_slot("rstscope:{s02}:ts", 17), 4828);
    /* Only the tag counts; an empty tag hashes the whole key. */
    cr_assert_eq(rs_key_slot("a{s01}b", 7), rs_key_slot("{s01}", 5));
    cr_assert_eq(rs_key_slot("x{}y", 4), rs_key_slot("x{}y", 4));
    cr_assert_neq(rs_key_slot("x{}y", 4), rs_key_slot("", 0));
    cr_assert_lt(rs_key_slot("rstscope:sensors", 16), 16384);
}

Test(redis_sensor, names)
{
    cr_assert(rs_sensor_valid("dc1-spine3"));
    cr_assert(rs_sensor_valid("a.b_c-D9"));
    cr_assert(rs_sensor_valid("12345678901234567890123456789012"));
    cr_assert_not(rs_sensor_valid("123456789012345678901234567890123"));
    cr_assert_not(rs_sensor_valid(""));
    cr_assert_not(rs_sensor_valid(NULL));
    cr_assert_not(rs_sensor_valid("a{b}"));
    cr_assert_not(rs_sensor_valid("a b"));
    cr_assert_not(rs_sensor_valid("a:b"));
}

Test(redis_fields, every_cause_and_signal_once)
{
    int n = rs_field_count();
    cr_assert_eq(n, CAUSE_MAX + OVL_MAX + RS_EXTRA);
    for (int c = 0; c < CAUSE_MAX; c++)
        cr_assert_str_eq(rs_field_name(RS_F_CAUSE0 + c), cause_name(c));
    for (int o = 0; o < OVL_MAX; o++)
        cr_assert_str_eq(rs_field_name(CAUSE_MAX + o), overload_name(o));
    cr_assert_str_eq(rs_field_name(RS_F_RESETS), "resets");
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            cr_assert_str_neq(rs_field_name(i), rs_field_name(j), "duplicate field %d/%d", i, j);

    struct engine_stats s;
    memset(&s, 0, sizeof(s));
    for (int c = 0; c < CAUSE_MAX; c++)
        s.causes[c] = 100 + (uint64_t)c;
    s.resets = 7;
    s.packets = 99;
    uint64_t val[RS_FIELDS_MAX];
    rs_fields_from_stats(&s, 5, val);
    cr_assert_eq(val[3], 103);
    cr_assert_eq(val[RS_F_RESETS], 7);
    for (int i = 0; i < n; i++)
        if (strcmp(rs_field_name(i), "packets") == 0)
            cr_assert_eq(val[i], 99);
        else if (strcmp(rs_field_name(i), "drops") == 0)
            cr_assert_eq(val[i], 5);
}

Test(redis_top, member_text)
{
    struct topk_key k;
    char buf[64];
    memset(&k, 0, sizeof(k));
    k.addr[10] = k.addr[11] = 0xff;
    k.addr[12] = 10;
    k.addr[15] = 2;
    k.port = 443;
    k.family = 4;
    rs_top_member(RS_TOP_SERVERS, &k, buf, sizeof(buf));
    cr_assert_str_eq(buf, "10.0.0.2:443");
    rs_top_member(RS_TOP_CLIENTS, &k, buf, sizeof(buf));
    cr_assert_str_eq(buf, "10.0.0.2");
    rs_top_member(RS_TOP_PORTS, &k, buf, sizeof(buf));
    cr_assert_str_eq(buf, "443");
    memset(&k, 0, sizeof(k));
    k.addr[15] = 1;
    k.port = 80;
    k.family = 6;
    rs_top_member(RS_TOP_SERVERS, &k, buf, sizeof(buf));
    cr_assert_str_eq(buf, "[::1]:80");
}
