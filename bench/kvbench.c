// SPDX-License-Identifier: GPL-2.0
/*
 * kvbench - traffic for `make bench`, run inside the QEMU guest's network
 * namespaces (never on a host network). Python is far too slow under TCG.
 *
 *   kvbench udpgen  --dst A [--n N] [--stride S] [--width W] --port P
 *                   [--duration SEC | --count C] [--interval-us U]
 *                   [--offset O] [--seed X]
 *       New UDP flows: every datagram has a fresh (source address, source
 *       port) from 192.168.0-249.2-251 x 1024-64999, sent with a raw socket
 *       (IP_HDRINCL) in batches of sendmmsg(). Destination: A + i*S + j,
 *       i uniform in [0,N), j uniform in [0,W). Prints
 *       "sent=X elapsed=SEC".
 *   kvbench udpab SEC WINDOW OFFSET NETNS,DST,N,STRIDE,WIDTH,PORT...
 *       udpgen's new flows to several targets from one process, each from
 *       a raw socket in its own network namespace (/run/netns/NETNS),
 *       taking turns every WINDOW seconds until each had SEC seconds: a
 *       slow drift of the machine's speed hits every target alike.
 *       Prints "target=I sent=X elapsed=SEC" per target.
 *   kvbench udpsink --port P [--bind A] [--first]
 *       Count datagrams received on P until SIGTERM/SIGINT, then print
 *       "received=X". With --first: wait for one datagram, print
 *       "first=EPOCH-SECONDS" (CLOCK_REALTIME) and exit.
 *   kvbench tcpconn --dst A --port P [--duration SEC]
 *       Sequential TCP connects (each from a new ephemeral port, closed
 *       with RST so no TIME_WAIT piles up). Prints "conns=X failed=F
 *       elapsed=SEC p50_us=.. p99_us=..".
 *   kvbench tcpsink --port P
 *       Accept and close connections until killed.
 *
 * Ready lines: the sinks print "ready" on stdout (flushed) once bound.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double realtime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* Uniform in [0, n) (n < 2^32): Lemire's multiply-shift. */
static uint32_t below(uint32_t n)
{
	return (uint32_t)(((rng() >> 32) * (uint64_t)n) >> 32);
}

struct opts {
	const char *dst, *bind;
	uint32_t n, stride, width, interval_us;
	uint64_t count, offset, seed;
	double duration;
	int port, first;
};

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "dst", 1, 0, 'd' }, { "n", 1, 0, 'n' },
		{ "stride", 1, 0, 's' }, { "width", 1, 0, 'w' },
		{ "port", 1, 0, 'p' }, { "duration", 1, 0, 't' },
		{ "count", 1, 0, 'c' }, { "interval-us", 1, 0, 'i' },
		{ "offset", 1, 0, 'o' }, { "seed", 1, 0, 'x' },
		{ "bind", 1, 0, 'b' }, { "first", 0, 0, 'f' },
		{ 0, 0, 0, 0 }
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->n = 1;
	o->stride = 1;
	o->width = 1;
	o->duration = 0;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': o->dst = optarg; break;
		case 'n': o->n = strtoul(optarg, NULL, 0); break;
		case 's': o->stride = strtoul(optarg, NULL, 0); break;
		case 'w': o->width = strtoul(optarg, NULL, 0); break;
		case 'p': o->port = atoi(optarg); break;
		case 't': o->duration = atof(optarg); break;
		case 'c': o->count = strtoull(optarg, NULL, 0); break;
		case 'i': o->interval_us = strtoul(optarg, NULL, 0); break;
		case 'o': o->offset = strtoull(optarg, NULL, 0); break;
		case 'x': o->seed = strtoull(optarg, NULL, 0); break;
		case 'b': o->bind = optarg; break;
		case 'f': o->first = 1; break;
		default: exit(2);
		}
	}
	if (!o->n || !o->width || !o->port) {
		fprintf(stderr, "kvbench: bad arguments\n");
		exit(2);
	}
}

static uint32_t addr_of(const char *s)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1) {
		fprintf(stderr, "kvbench: bad address '%s'\n", s ? s : "");
		exit(2);
	}
	return ntohl(a.s_addr);
}

struct pkt {
	struct iphdr ip;
	struct udphdr udp;
	char payload[16];
} __attribute__((packed));

/* A batch of raw UDP datagrams for sendmmsg(), each a new flow. */
struct flowgen {
	struct pkt pkts[BATCH];
	struct sockaddr_in to[BATCH];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
};

static int raw_socket(void)
{
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0)
		die("socket(SOCK_RAW)");
	if (setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one)) < 0)
		die("IP_HDRINCL");
	return fd;
}

static void flowgen_init(struct flowgen *g)
{
	int i;

	memset(g, 0, sizeof(*g));
	for (i = 0; i < BATCH; i++) {
		g->pkts[i].ip.version = 4;
		g->pkts[i].ip.ihl = 5;
		g->pkts[i].ip.ttl = 64;
		g->pkts[i].ip.protocol = IPPROTO_UDP;
		g->pkts[i].ip.tot_len = htons(sizeof(struct pkt));
		g->pkts[i].udp.len = htons(sizeof(struct pkt) - sizeof(struct iphdr));
		g->pkts[i].udp.check = 0;	/* allowed for IPv4 */
		memcpy(g->pkts[i].payload, "kvbench-flow-gen", 16);
		g->iov[i].iov_base = &g->pkts[i];
		g->iov[i].iov_len = sizeof(struct pkt);
		g->to[i].sin_family = AF_INET;
		g->msgs[i].msg_hdr.msg_iov = &g->iov[i];
		g->msgs[i].msg_hdr.msg_iovlen = 1;
		g->msgs[i].msg_hdr.msg_name = &g->to[i];
		g->msgs[i].msg_hdr.msg_namelen = sizeof(g->to[i]);
	}
}

/*
 * Datagram i of the batch: flow number @seq (a fresh source address and
 * port from 192.168.0-249.2-251 x 1024-64999) to @dst:@port.
 */
static void flowgen_fill(struct flowgen *g, int i, uint64_t seq,
			 uint32_t dst, int port)
{
	uint32_t k = (uint32_t)((seq / 63976) % 62500);
	uint32_t s = 0xc0a80000u + ((k / 250) << 8) + 2 + k % 250;

	g->pkts[i].ip.saddr = htonl(s);
	g->pkts[i].ip.daddr = htonl(dst);
	g->pkts[i].ip.id = htons((uint16_t)seq);
	g->pkts[i].udp.source = htons(1024 + seq % 63976);
	g->pkts[i].udp.dest = htons(port);
	g->to[i].sin_addr.s_addr = htonl(dst);
}

static int udpgen(struct opts *o)
{
	static struct flowgen g;
	uint32_t base = addr_of(o->dst);
	uint64_t seq = o->offset, sent = 0;
	double t0, end, now;
	int fd, i;

	if (o->seed)
		rng_state ^= o->seed * 0x2545f4914f6cdd1dULL;
	fd = raw_socket();
	flowgen_init(&g);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	t0 = mono();
	end = o->duration > 0 ? t0 + o->duration : 1e300;
	while (!stop) {
		int batch = o->interval_us ? 1 : BATCH, r;

		if (o->count && sent + batch > o->count)
			batch = (int)(o->count - sent);
		if (batch <= 0)
			break;
		for (i = 0; i < batch; i++, seq++)
			flowgen_fill(&g, i, seq, base + below(o->n) * o->stride +
				     below(o->width), o->port);
		r = sendmmsg(fd, g.msgs, batch, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* Full queues (ENOBUFS) just lose datagrams. */
			if (errno != ENOBUFS && errno != EPERM)
				die("sendmmsg");
			r = batch;
		}
		sent += (uint64_t)r;
		now = mono();
		if (now >= end)
			break;
		if (o->interval_us)
			usleep(o->interval_us);
	}
	printf("sent=%llu elapsed=%.6f\n", (unsigned long long)sent, mono() - t0);
	return 0;
}

static int udpsink(struct opts *o)
{
	static char bufs[BATCH][64];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	uint64_t received = 0;
	int fd, i, sz = 8 << 20;
	struct sigaction act = { .sa_handler = on_signal };

	/* No SA_RESTART: the signal interrupts recvmmsg(). */
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	sa.sin_port = htons(o->port);
	if (o->bind)
		sa.sin_addr.s_addr = htonl(addr_of(o->bind));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (!stop) {
		int r = recvmmsg(fd, msgs, o->first ? 1 : BATCH, 0, NULL);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("recvmmsg");
		}
		if (o->first) {
			printf("first=%.6f\n", realtime());
			return 0;
		}
		received += (uint64_t)r;
	}
	printf("received=%llu\n", (unsigned long long)received);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int tcpconn(struct opts *o)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	size_t cap = 1 << 16, n = 0;
	double *lat = malloc(cap * sizeof(*lat));
	double t0, end;
	uint64_t failed = 0;

	if (!lat)
		die("malloc");
	sa.sin_addr.s_addr = htonl(addr_of(o->dst));
	sa.sin_port = htons(o->port);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	t0 = mono();
	end = t0 + (o->duration > 0 ? o->duration : 5);
	while (!stop && mono() < end) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), err = 0;
		socklen_t len = sizeof(err);
		struct pollfd p;
		double s;

		if (fd < 0)
			die("socket");
		s = mono();
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
		    errno != EINPROGRESS) {
			failed++;
			close(fd);
			continue;
		}
		p.fd = fd;
		p.events = POLLOUT;
		if (poll(&p, 1, 2000) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			failed++;
		} else {
			if (n == cap) {
				cap *= 2;
				lat = realloc(lat, cap * sizeof(*lat));
				if (!lat)
					die("realloc");
			}
			lat[n++] = (mono() - s) * 1e6;
		}
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("conns=%zu failed=%llu elapsed=%.6f p50_us=%.0f p99_us=%.0f\n",
	       n, (unsigned long long)failed, mono() - t0,
	       n ? lat[n / 2] : 0.0, n ? lat[(size_t)(n * 0.99)] : 0.0);
	return 0;
}

static int tcpsink(struct opts *o)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd, one = 1;

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_port = htons(o->port);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	if (listen(fd, 4096) < 0)
		die("listen");
	printf("ready\n");
	fflush(stdout);
	while (!stop) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

		if (c >= 0)
			close(c);
		else if (errno != EINTR && errno != ECONNABORTED)
			die("accept");
	}
	return 0;
}

#define MAX_TARGETS 16

/* One target of udpab: its socket (in its netns) and what it sends to. */
struct target {
	int fd, port;
	uint32_t base, n, stride, width;
	uint64_t sent;
	double elapsed;
};

static int udpab(int argc, char **argv)
{
	static struct target tg[MAX_TARGETS];
	static struct flowgen g;
	double total, window, t0, end, now;
	uint64_t seq;
	int nt = argc - 3, i, k;

	if (nt < 1 || nt > MAX_TARGETS) {
		fprintf(stderr, "usage: kvbench udpab SEC WINDOW OFFSET NETNS,DST,N,STRIDE,WIDTH,PORT...\n");
		return 2;
	}
	total = atof(argv[0]);
	window = atof(argv[1]);
	seq = strtoull(argv[2], NULL, 0);
	for (k = 0; k < nt; k++) {
		char ns[256], dst[64], path[300];
		int nsfd;

		if (sscanf(argv[3 + k], "%255[^,],%63[^,],%u,%u,%u,%d", ns, dst, &tg[k].n,
			   &tg[k].stride, &tg[k].width, &tg[k].port) != 6 || !tg[k].n || !tg[k].width) {
			fprintf(stderr, "kvbench: bad target '%s'\n", argv[3 + k]);
			return 2;
		}
		tg[k].base = addr_of(dst);
		snprintf(path, sizeof(path), "/run/netns/%s", ns);
		nsfd = open(path, O_RDONLY);
		if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0)
			die(path);
		close(nsfd);
		tg[k].fd = raw_socket();
	}
	flowgen_init(&g);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	/* Turns: target k sends for one window, then k+1, ... (the same
	 * source tuples in each target: their conntrack tables are apart). */
	for (k = 0; !stop && tg[nt - 1].elapsed < total; k = (k + 1) % nt) {
		struct target *t = &tg[k];
		uint64_t s0 = seq;

		t0 = mono();
		end = t0 + window;
		do {
			int r;

			for (i = 0; i < BATCH; i++, seq++)
				flowgen_fill(&g, i, seq, t->base +
					     below(t->n) * t->stride +
					     below(t->width), t->port);
			r = sendmmsg(t->fd, g.msgs, BATCH, 0);
			if (r < 0 && errno != EINTR && errno != ENOBUFS && errno != EPERM)
				die("sendmmsg");
			now = mono();
		} while (!stop && now < end);
		t->sent += seq - s0;
		t->elapsed += now - t0;
	}
	for (k = 0; k < nt; k++)
		printf("target=%d sent=%llu elapsed=%.6f\n", k,
		       (unsigned long long)tg[k].sent, tg[k].elapsed);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	const char *cmd;

	if (argc < 2) {
		fprintf(stderr, "usage: kvbench udpgen|udpab|udpsink|tcpconn|tcpsink OPTIONS\n");
		return 2;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "udpab"))
		return udpab(argc - 2, argv + 2);
	parse(argc - 1, argv + 1, &o);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "udpgen"))
		return udpgen(&o);
	if (!strcmp(cmd, "udpsink"))
		return udpsink(&o);
	if (!strcmp(cmd, "tcpconn"))
		return tcpconn(&o);
	if (!strcmp(cmd, "tcpsink"))
		return tcpsink(&o);
	fprintf(stderr, "kvbench: unknown command %s\n", cmd);
	return 2;
}
