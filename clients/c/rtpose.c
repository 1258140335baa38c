/* CURVE certificate files and v1 pose decoding for C clients of realtime-pose. */
#include "rtpose.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <zmq.h>

static int fail(char *error, size_t error_size, const char *format, ...)
{
    if (error != NULL && error_size > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(error, error_size, format, args);
        va_end(args);
    }
    return -1;
}

/* Parse ` = "KEY"` (quotes optional, as in ZPL) after a key name into `key`. */
static int parse_key_value(const char *text, char key[RTPOSE_Z85_KEY_CHARS + 1], const char *path,
                           const char *name, char *error, size_t error_size)
{
    text += strspn(text, " \t");
    if (*text != '=')
        return fail(error, error_size, "%s: expected '%s = \"...\"'", path, name);
    text++;
    text += strspn(text, " \t");
    bool quoted = *text == '"';
    if (quoted)
        text++;
    size_t length = strcspn(text, quoted ? "\"" : " \t\r\n");
    if (length != RTPOSE_Z85_KEY_CHARS)
        return fail(error, error_size, "%s: %s has %zu characters, a Z85 CURVE key has %d", path,
                    name, length, RTPOSE_Z85_KEY_CHARS);
    memcpy(key, text, RTPOSE_Z85_KEY_CHARS);
    key[RTPOSE_Z85_KEY_CHARS] = '\0';
    uint8_t binary[32];
    if (zmq_z85_decode(binary, key) == NULL)
        return fail(error, error_size, "%s: %s is not valid Z85", path, name);
    return 0;
}

int rtpose_read_certificate(const char *path, rtpose_certificate *certificate, char *error,
                            size_t error_size)
{
    certificate->public_key[0] = '\0';
    certificate->secret_key[0] = '\0';
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return fail(error, error_size, "cannot read certificate %s: %s (make key pairs with "
                    "realtime-pose keys --output FOLDER)", path, strerror(errno));
    char line[512];
    int status = 0;
    while (status == 0 && fgets(line, sizeof line, file) != NULL) {
        const char *text = line + strspn(line, " \t");
        if (strncmp(text, "public-key", 10) == 0)
            status = parse_key_value(text + 10, certificate->public_key, path, "public-key", error,
                                     error_size);
        else if (strncmp(text, "secret-key", 10) == 0)
            status = parse_key_value(text + 10, certificate->secret_key, path, "secret-key", error,
                                     error_size);
    }
    fclose(file);
    if (status == 0 && certificate->public_key[0] == '\0')
        return fail(error, error_size, "%s holds no public-key: not a pyzmq certificate file",
                    path);
    return status;
}

void rtpose_pose_init(rtpose_pose *pose)
{
    memset(pose, 0, sizeof *pose);
}

void rtpose_pose_free(rtpose_pose *pose)
{
    free(pose->keypoints);
    rtpose_pose_init(pose);
}

static const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
    size_t length = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *name = &map->via.map.ptr[i].key;
        if (name->type == MSGPACK_OBJECT_STR && name->via.str.size == length
            && memcmp(name->via.str.ptr, key, length) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static int get_int64(const msgpack_object *map, const char *key, int64_t *out, char *error,
                     size_t error_size)
{
    const msgpack_object *value = map_get(map, key);
    if (value == NULL)
        return fail(error, error_size, "pose has no '%s'", key);
    if (value->type == MSGPACK_OBJECT_POSITIVE_INTEGER && value->via.u64 <= INT64_MAX)
        *out = (int64_t)value->via.u64;
    else if (value->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = value->via.i64;
    else
        return fail(error, error_size, "pose '%s' is not a 64-bit integer", key);
    return 0;
}

/* A coordinate or likelihood: a float (NaN where not found); integers and nil are tolerated. */
static int get_number(const msgpack_object *value, double *out)
{
    switch (value->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *out = value->via.f64;
        return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *out = (double)value->via.u64;
        return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = (double)value->via.i64;
        return 0;
    case MSGPACK_OBJECT_NIL:
        *out = NAN;
        return 0;
    default:
        return -1;
    }
}

static int decode_keypoints(const msgpack_object *animals, rtpose_pose *pose, char *error,
                            size_t error_size)
{
    if (animals == NULL || animals->type != MSGPACK_OBJECT_ARRAY)
        return fail(error, error_size, "pose 'keypoints' is missing or not an array of animals");
    size_t n_animals = animals->via.array.size;
    size_t n_keypoints = 0;
    if (n_animals > 0) {
        if (animals->via.array.ptr[0].type != MSGPACK_OBJECT_ARRAY)
            return fail(error, error_size, "pose 'keypoints'[0] is not an array of keypoints");
        n_keypoints = animals->via.array.ptr[0].via.array.size;
    }
    size_t needed = n_animals * n_keypoints * 3;
    if (needed > pose->capacity) {
        double *grown = realloc(pose->keypoints, needed * sizeof *grown);
        if (grown == NULL)
            return fail(error, error_size, "out of memory for %zu keypoints", needed / 3);
        pose->keypoints = grown;
        pose->capacity = needed;
    }
    pose->n_animals = n_animals;
    pose->n_keypoints = n_keypoints;
    for (size_t a = 0; a < n_animals; a++) {
        const msgpack_object *animal = &animals->via.array.ptr[a];
        if (animal->type != MSGPACK_OBJECT_ARRAY || animal->via.array.size != n_keypoints)
            return fail(error, error_size, "pose 'keypoints'[%zu] is not an array of %zu keypoints",
                        a, n_keypoints);
        for (size_t k = 0; k < n_keypoints; k++) {
            const msgpack_object *point = &animal->via.array.ptr[k];
            if (point->type != MSGPACK_OBJECT_ARRAY || point->via.array.size != 3)
                return fail(error, error_size,
                            "pose 'keypoints'[%zu][%zu] is not [x, y, likelihood]", a, k);
            double *xyp = &pose->keypoints[(a * n_keypoints + k) * 3];
            for (size_t c = 0; c < 3; c++)
                if (get_number(&point->via.array.ptr[c], &xyp[c]) != 0)
                    return fail(error, error_size,
                                "pose 'keypoints'[%zu][%zu][%zu] is not a number", a, k, c);
        }
    }
    return 0;
}

static int decode_message(const msgpack_object *root, rtpose_pose *pose, char *error,
                          size_t error_size)
{
    if (root->type != MSGPACK_OBJECT_MAP)
        return fail(error, error_size, "pose payload is not a msgpack map");
    int64_t version;
    if (get_int64(root, "v", &version, error, error_size) != 0)
        return -1;
    if (version != 1)
        return fail(error, error_size,
                    "pose has schema version v=%lld; this client reads v1 (docs/protocol.md)",
                    (long long)version);
    if (get_int64(root, "seq", &pose->seq, error, error_size) != 0
        || get_int64(root, "frame_index", &pose->frame_index, error, error_size) != 0
        || get_int64(root, "t_capture_ns", &pose->t_capture_ns, error, error_size) != 0)
        return -1;
    return decode_keypoints(map_get(root, "keypoints"), pose, error, error_size);
}

int rtpose_decode_pose(const void *payload, size_t size, rtpose_pose *pose, char *error,
                       size_t error_size)
{
    msgpack_unpacked message;
    msgpack_unpacked_init(&message);
    size_t offset = 0;
    int status;
    if (msgpack_unpack_next(&message, payload, size, &offset) != MSGPACK_UNPACK_SUCCESS)
        status = fail(error, error_size, "pose payload is not msgpack");
    else if (offset != size)
        status = fail(error, error_size, "pose payload has %zu bytes after its map", size - offset);
    else
        status = decode_message(&message.data, pose, error, error_size);
    msgpack_unpacked_destroy(&message);
    return status;
}
