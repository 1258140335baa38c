/* The reusable part of a realtime-pose client in C: CURVE certificate files and v1 poses.
 *
 * The wire format is docs/protocol.md. Link with libzmq (Z85 checks) and msgpack-c.
 */
#ifndef RTPOSE_H
#define RTPOSE_H

#include <stddef.h>
#include <stdint.h>

/* A CURVE key in Z85 text: 40 characters. */
#define RTPOSE_Z85_KEY_CHARS 40

/* The keys of a pyzmq certificate file (zmq.auth.create_certificates, realtime-pose keys). */
typedef struct {
    char public_key[RTPOSE_Z85_KEY_CHARS + 1];
    char secret_key[RTPOSE_Z85_KEY_CHARS + 1]; /* "" in a public ".key" file */
} rtpose_certificate;

/* Read the `public-key = "..."` and `secret-key = "..."` lines of a certificate file.
 *
 * Returns 0, or -1 with a message in `error` when the file cannot be read, has no public key,
 * or holds a key that is not 40 characters of valid Z85. */
int rtpose_read_certificate(const char *path, rtpose_certificate *certificate, char *error,
                            size_t error_size);

/* The fields of a v1 `pose` message that a closed-loop consumer needs. */
typedef struct {
    int64_t seq;          /* +1 per published pose; a jump means poses were lost */
    int64_t frame_index;  /* camera frame the pose comes from */
    int64_t t_capture_ns; /* capture time, CLOCK_MONOTONIC of the publishing host */
    size_t n_animals;
    size_t n_keypoints;
    /* n_animals * n_keypoints * 3 doubles: keypoint k of animal a is
     * keypoints[(a * n_keypoints + k) * 3 + {0, 1, 2}] = x_px, y_px, likelihood; NaN where
     * not found. Owned by the pose and reused from message to message. */
    double *keypoints;
    size_t capacity; /* doubles allocated in keypoints */
} rtpose_pose;

/* An empty pose, ready for rtpose_decode_pose. */
void rtpose_pose_init(rtpose_pose *pose);

/* Free what a pose holds; it is empty (and reusable) afterwards. */
void rtpose_pose_free(rtpose_pose *pose);

/* Decode the msgpack payload of a `pose` message into `pose`.
 *
 * Unknown keys are ignored, as the protocol asks. Returns 0, or -1 with a message in `error`
 * when the payload is not msgpack, not schema version 1, or lacks a field or has it in another
 * shape; `pose` is then unspecified but still safe to reuse or free. */
int rtpose_decode_pose(const void *payload, size_t size, rtpose_pose *pose, char *error,
                       size_t error_size);

#endif /* RTPOSE_H */
