/* rtpose_client: subscribe to a realtime-pose session's poses, ping it, print one JSON summary.
 *
 *   rtpose_client --stream tcp://HOST:5555 --control tcp://HOST:5556 \
 *       --client-secret keys/clients/lab.key_secret --server-public keys/rig.key \
 *       [--count 100] [--timeout-ms 5000]
 *
 * Exit status: 0 when COUNT poses came, all decoded, and the ping succeeded; 1 otherwise (the
 * summary says what was missing); 2 for a usage or setup error (a message on stderr).
 */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>
#include <zmq.h>

#include "rtpose.h"

#define ERROR_SIZE 512
#define MAX_COUNT 100000000L /* one latency sample (8 bytes) is kept per pose */

typedef struct {
    const char *stream;
    const char *control;
    const char *client_secret;
    const char *server_public;
    long count;
    int timeout_ms;
} options;

/* CURVE keys of this client, or none (plain connections, fine on loopback). */
typedef struct {
    bool enabled;
    rtpose_certificate client;
    rtpose_certificate server;
} curve_keys;

/* What came on the stream. */
typedef struct {
    long received;
    long gaps;     /* jumps in seq */
    long missing;  /* poses lost in those jumps */
    long restarts; /* seq went down: the session restarted */
    long decode_errors;
    int64_t first_seq;
    bool timed_out;
    rtpose_pose last;
    int64_t *latencies_ns; /* one per received pose: receipt - t_capture_ns, same host clock */
} stream_tally;

typedef struct {
    bool ok;
    char error[ERROR_SIZE]; /* why not ok */
} ping_result;

static void usage(FILE *out)
{
    fputs("usage: rtpose_client --stream ADDRESS --control ADDRESS\n"
          "                     [--client-secret FILE --server-public FILE]\n"
          "                     [--count N] [--timeout-ms MS]\n"
          "Receive N poses (default 100) from a realtime-pose session, ping its control socket\n"
          "and print one JSON line. --client-secret (the client's .key_secret) and\n"
          "--server-public (the rig's .key) turn CURVE on. MS (default 5000) bounds the wait\n"
          "for each pose and for the ping reply.\n",
          out);
}

static int parse_options(int argc, char **argv, options *opts)
{
    static const struct option long_options[] = {
        {"stream", required_argument, NULL, 's'},
        {"control", required_argument, NULL, 'c'},
        {"client-secret", required_argument, NULL, 'k'},
        {"server-public", required_argument, NULL, 'p'},
        {"count", required_argument, NULL, 'n'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *opts = (options){.count = 100, .timeout_ms = 5000};
    int option;
    long value;
    char *end;
    while ((option = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (option) {
        case 's': opts->stream = optarg; break;
        case 'c': opts->control = optarg; break;
        case 'k': opts->client_secret = optarg; break;
        case 'p': opts->server_public = optarg; break;
        case 'n':
            opts->count = strtol(optarg, &end, 10);
            if (*end != '\0' || opts->count < 1 || opts->count > MAX_COUNT) {
                fprintf(stderr, "rtpose_client: --count must be an integer from 1 to %ld, not "
                        "'%s'\n", MAX_COUNT, optarg);
                return -1;
            }
            break;
        case 't':
            value = strtol(optarg, &end, 10);
            if (*end != '\0' || value < 1 || value > INT_MAX) {
                fprintf(stderr, "rtpose_client: --timeout-ms must be a positive integer, not "
                        "'%s'\n", optarg);
                return -1;
            }
            opts->timeout_ms = (int)value;
            break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc || opts->stream == NULL || opts->control == NULL) {
        usage(stderr);
        return -1;
    }
    if ((opts->client_secret == NULL) != (opts->server_public == NULL)) {
        fputs("rtpose_client: CURVE needs both --client-secret and --server-public\n", stderr);
        return -1;
    }
    return 0;
}

static int load_curve_keys(const options *opts, curve_keys *keys)
{
    char error[ERROR_SIZE];
    keys->enabled = opts->client_secret != NULL;
    if (!keys->enabled)
        return 0;
    if (!zmq_has("curve")) {
        fputs("rtpose_client: this libzmq was built without CURVE (libsodium)\n", stderr);
        return -1;
    }
    if (rtpose_read_certificate(opts->client_secret, &keys->client, error, sizeof error) != 0
        || rtpose_read_certificate(opts->server_public, &keys->server, error, sizeof error) != 0) {
        fprintf(stderr, "rtpose_client: %s\n", error);
        return -1;
    }
    if (keys->client.secret_key[0] == '\0') {
        fprintf(stderr, "rtpose_client: %s holds no secret-key; pass the client's .key_secret "
                "file to --client-secret\n", opts->client_secret);
        return -1;
    }
    return 0;
}

/* A socket connected to `address` with CURVE (when on) and linger 0, so that closing it never
 * waits for a peer that is not there. */
static void *open_socket(void *context, int type, const char *address, const curve_keys *keys)
{
    void *socket = zmq_socket(context, type);
    if (socket == NULL)
        return NULL;
    int linger_ms = 0;
    /* Z85 keys are set as 41 bytes: 40 characters and the terminating NUL (zmq_setsockopt(3)). */
    if (zmq_setsockopt(socket, ZMQ_LINGER, &linger_ms, sizeof linger_ms) != 0
        || (keys->enabled
            && (zmq_setsockopt(socket, ZMQ_CURVE_SERVERKEY, keys->server.public_key,
                               RTPOSE_Z85_KEY_CHARS + 1) != 0
                || zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, keys->client.public_key,
                                  RTPOSE_Z85_KEY_CHARS + 1) != 0
                || zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, keys->client.secret_key,
                                  RTPOSE_Z85_KEY_CHARS + 1) != 0))
        || (type == ZMQ_SUB && zmq_setsockopt(socket, ZMQ_SUBSCRIBE, "pose", 4) != 0)
        || zmq_connect(socket, address) != 0) {
        fprintf(stderr, "rtpose_client: cannot connect to %s: %s\n", address,
                zmq_strerror(zmq_errno()));
        zmq_close(socket);
        return NULL;
    }
    return socket;
}

static int64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now); /* the publisher's clock, on the same computer */
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* Skip the rest of a message: a third frame is not v1. */
static void skip_frames(void *socket)
{
    zmq_msg_t extra;
    zmq_msg_init(&extra);
    while (zmq_msg_recv(&extra, socket, 0) >= 0 && zmq_msg_more(&extra))
        ;
    zmq_msg_close(&extra);
}

/* Receive opts->count poses (undecodable ones included); stop early when none comes for
 * opts->timeout_ms. */
static void receive_poses(void *socket, const options *opts, stream_tally *tally)
{
    char error[ERROR_SIZE];
    rtpose_pose pose;
    rtpose_pose_init(&pose);
    zmq_msg_t topic, payload;
    zmq_msg_init(&topic);
    zmq_msg_init(&payload);
    while (tally->received + tally->decode_errors < opts->count) {
        zmq_pollitem_t item = {.socket = socket, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, opts->timeout_ms) <= 0) {
            tally->timed_out = true;
            break;
        }
        if (zmq_msg_recv(&topic, socket, 0) < 0)
            break;
        bool has_payload = zmq_msg_more(&topic);
        if (has_payload && zmq_msg_recv(&payload, socket, 0) < 0)
            break;
        int64_t received_ns = monotonic_ns();
        if (has_payload && zmq_msg_more(&payload))
            skip_frames(socket);
        if (zmq_msg_size(&topic) != 4 || memcmp(zmq_msg_data(&topic), "pose", 4) != 0)
            continue; /* another topic that starts with "pose" */
        if (!has_payload
            || rtpose_decode_pose(zmq_msg_data(&payload), zmq_msg_size(&payload), &pose, error,
                                  sizeof error) != 0) {
            fprintf(stderr, "rtpose_client: %s\n", has_payload ? error : "pose without payload");
            tally->decode_errors++;
            continue;
        }
        if (tally->received == 0) {
            tally->first_seq = pose.seq;
        } else if (pose.seq > tally->last.seq + 1) {
            tally->gaps++;
            tally->missing += pose.seq - tally->last.seq - 1;
        } else if (pose.seq <= tally->last.seq) {
            tally->restarts++;
        }
        tally->latencies_ns[tally->received++] = received_ns - pose.t_capture_ns;
        /* keep the last pose: swap buffers so that neither is copied nor reallocated */
        rtpose_pose previous = tally->last;
        tally->last = pose;
        pose = previous;
    }
    zmq_msg_close(&topic);
    zmq_msg_close(&payload);
    rtpose_pose_free(&pose);
}

static void ping(void *context, const options *opts, const curve_keys *keys, ping_result *result)
{
    *result = (ping_result){.ok = false};
    void *socket = open_socket(context, ZMQ_REQ, opts->control, keys);
    if (socket == NULL) {
        snprintf(result->error, sizeof result->error, "cannot connect to %s", opts->control);
        return;
    }
    msgpack_sbuffer request;
    msgpack_sbuffer_init(&request);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &request, msgpack_sbuffer_write);
    msgpack_pack_map(&packer, 2);
    msgpack_pack_str_with_body(&packer, "cmd", 3);
    msgpack_pack_str_with_body(&packer, "ping", 4);
    msgpack_pack_str_with_body(&packer, "id", 2);
    msgpack_pack_int(&packer, 1);
    int sent = zmq_send(socket, request.data, request.size, 0);
    msgpack_sbuffer_destroy(&request);

    zmq_pollitem_t item = {.socket = socket, .events = ZMQ_POLLIN};
    zmq_msg_t reply;
    zmq_msg_init(&reply);
    if (sent < 0) {
        snprintf(result->error, sizeof result->error, "send failed: %s",
                 zmq_strerror(zmq_errno()));
    } else if (zmq_poll(&item, 1, opts->timeout_ms) <= 0 || zmq_msg_recv(&reply, socket, 0) < 0) {
        snprintf(result->error, sizeof result->error, "no reply within %d ms", opts->timeout_ms);
    } else {
        msgpack_unpacked message;
        msgpack_unpacked_init(&message);
        size_t offset = 0;
        if (msgpack_unpack_next(&message, zmq_msg_data(&reply), zmq_msg_size(&reply), &offset)
                != MSGPACK_UNPACK_SUCCESS
            || message.data.type != MSGPACK_OBJECT_MAP) {
            snprintf(result->error, sizeof result->error, "reply is not a msgpack map");
        } else {
            const msgpack_object_map *map = &message.data.via.map;
            for (uint32_t i = 0; i < map->size; i++) {
                const msgpack_object *key = &map->ptr[i].key, *value = &map->ptr[i].val;
                if (key->type != MSGPACK_OBJECT_STR)
                    continue;
                if (key->via.str.size == 2 && memcmp(key->via.str.ptr, "ok", 2) == 0)
                    result->ok = value->type == MSGPACK_OBJECT_BOOLEAN && value->via.boolean;
                else if (key->via.str.size == 5 && memcmp(key->via.str.ptr, "error", 5) == 0
                         && value->type == MSGPACK_OBJECT_STR)
                    snprintf(result->error, sizeof result->error, "%.*s",
                             (int)value->via.str.size, value->via.str.ptr);
            }
            if (!result->ok && result->error[0] == '\0')
                snprintf(result->error, sizeof result->error, "reply has no ok: true");
        }
        msgpack_unpacked_destroy(&message);
    }
    zmq_msg_close(&reply);
    zmq_close(socket);
}

static int compare_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Median of `values` (already sorted), in microseconds. */
static double median_us(const int64_t *values, long n)
{
    double middle = n % 2 ? (double)values[n / 2] : ((double)values[n / 2 - 1] + values[n / 2]) / 2;
    return middle / 1e3;
}

/* The 99th percentile of `values` (already sorted; nearest rank), in microseconds. */
static double p99_us(const int64_t *values, long n)
{
    long rank = (long)ceil(0.99 * (double)n);
    return (double)values[(rank > 0 ? rank : 1) - 1] / 1e3;
}

static void print_json_string(const char *text)
{
    putchar('"');
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c == '"' || *c == '\\')
            printf("\\%c", *c);
        else if (*c < 0x20)
            printf("\\u%04x", *c);
        else
            putchar(*c);
    }
    putchar('"');
}

static void print_number(double value)
{
    if (isfinite(value))
        printf("%.17g", value);
    else
        fputs("null", stdout); /* NaN: a keypoint not found; JSON has no NaN */
}

static void print_keypoints(const rtpose_pose *pose)
{
    putchar('[');
    for (size_t a = 0; a < pose->n_animals; a++) {
        printf(a ? ",[" : "[");
        for (size_t k = 0; k < pose->n_keypoints; k++) {
            const double *point = &pose->keypoints[(a * pose->n_keypoints + k) * 3];
            printf(k ? ",[" : "[");
            print_number(point[0]);
            putchar(',');
            print_number(point[1]);
            putchar(',');
            print_number(point[2]);
            putchar(']');
        }
        putchar(']');
    }
    putchar(']');
}

static void print_summary(stream_tally *tally, const ping_result *ping, bool complete)
{
    printf("{\"client\":\"c\",\"received\":%ld,\"gaps\":%ld,\"missing\":%ld,\"restarts\":%ld,"
           "\"decode_errors\":%ld,\"timed_out\":%s,",
           tally->received, tally->gaps, tally->missing, tally->restarts, tally->decode_errors,
           tally->timed_out ? "true" : "false");
    if (tally->received > 0) {
        const rtpose_pose *last = &tally->last;
        qsort(tally->latencies_ns, (size_t)tally->received, sizeof *tally->latencies_ns,
              compare_int64);
        printf("\"first_seq\":%lld,\"last_seq\":%lld,\"keypoints_shape\":[%zu,%zu,3],"
               "\"latency_p50_us\":%.1f,\"latency_p99_us\":%.1f,",
               (long long)tally->first_seq, (long long)last->seq, last->n_animals,
               last->n_keypoints, median_us(tally->latencies_ns, tally->received),
               p99_us(tally->latencies_ns, tally->received));
        printf("\"last_pose\":{\"seq\":%lld,\"frame_index\":%lld,\"t_capture_ns\":%lld,"
               "\"keypoints\":",
               (long long)last->seq, (long long)last->frame_index,
               (long long)last->t_capture_ns);
        print_keypoints(last);
        printf("},");
    } else {
        printf("\"first_seq\":null,\"last_seq\":null,\"keypoints_shape\":null,"
               "\"latency_p50_us\":null,\"latency_p99_us\":null,\"last_pose\":null,");
    }
    printf("\"ping_ok\":%s,\"ping_error\":", ping->ok ? "true" : "false");
    if (ping->ok)
        fputs("null", stdout);
    else
        print_json_string(ping->error);
    printf(",\"complete\":%s}\n", complete ? "true" : "false");
}

int main(int argc, char **argv)
{
    options opts;
    curve_keys keys;
    if (parse_options(argc, argv, &opts) != 0 || load_curve_keys(&opts, &keys) != 0)
        return 2;
    stream_tally tally = {.latencies_ns = malloc((size_t)opts.count * sizeof(int64_t))};
    if (tally.latencies_ns == NULL) {
        fputs("rtpose_client: out of memory for --count poses\n", stderr);
        return 2;
    }
    rtpose_pose_init(&tally.last);
    void *context = zmq_ctx_new();
    void *subscriber = open_socket(context, ZMQ_SUB, opts.stream, &keys);
    int status = 2;
    if (subscriber != NULL) {
        receive_poses(subscriber, &opts, &tally);
        zmq_close(subscriber);
        ping_result pong;
        ping(context, &opts, &keys, &pong);
        bool complete = tally.received == opts.count && tally.decode_errors == 0 && pong.ok;
        print_summary(&tally, &pong, complete);
        status = complete ? 0 : 1;
    }
    zmq_ctx_term(context);
    rtpose_pose_free(&tally.last);
    free(tally.latencies_ns);
    return status;
}
