function summary = rtpose_client(stream, control, client_secret, server_public, count, timeout_ms)
%RTPOSE_CLIENT Receive poses from a realtime-pose session, ping it, print a JSON summary.
%   SUMMARY = RTPOSE_CLIENT(STREAM, CONTROL, CLIENT_SECRET, SERVER_PUBLIC) subscribes to the
%   `pose` topic at STREAM (e.g. 'tcp://rig:5555'), receives 100 poses, sends a `ping` to the
%   control socket at CONTROL (e.g. 'tcp://rig:5556'), prints one JSON line and returns it as a
%   struct. CLIENT_SECRET is this client's .key_secret file and SERVER_PUBLIC the rig's .key
%   file (CURVE); pass '' for both to connect without CURVE (loopback only).
%   SUMMARY = RTPOSE_CLIENT(..., COUNT, TIMEOUT_MS) receives COUNT poses, waiting at most
%   TIMEOUT_MS (default 5000) for each and for the ping reply.
%
%   SUMMARY fields: received, gaps (jumps in seq), missing (poses lost in them), restarts (seq
%   went down), decode_errors, timed_out, first_seq, last_seq, keypoints_shape ([A K 3]),
%   latency_p50_us and latency_p99_us (receipt minus capture, through the ping's
%   wall_offset_ns), last_pose (seq,
%   frame_index, t_capture_ns, keypoints), ping_ok, ping_error; complete is true when COUNT
%   poses came, all decoded, and the ping succeeded. [] where there is nothing to say.

if nargin < 5 || isempty(count)
    count = 100;
end
if nargin < 6 || isempty(timeout_ms)
    timeout_ms = 5000;
end
keys = curve_keys(client_secret, server_public);

[summary, capture_ns, arrival_unix_s] = receive_poses(stream, keys, count, timeout_ms);
[summary.ping_ok, summary.ping_error, wall_offset_ns] = ping(control, keys, timeout_ms);
if summary.received > 0 && summary.ping_ok
    % MATLAB and Octave cannot read the rig's clock (CLOCK_MONOTONIC): compare in Unix time
    capture_unix_us = double(capture_ns + wall_offset_ns) / 1e3;
    latency_us = sort(arrival_unix_s * 1e6 - capture_unix_us);
    summary.latency_p50_us = median(latency_us);
    summary.latency_p99_us = latency_us(max(1, ceil(0.99 * numel(latency_us))));
end
summary.complete = summary.received == count && summary.decode_errors == 0 && summary.ping_ok;
fprintf('%s\n', summary_json(summary));
end

function keys = curve_keys(client_secret, server_public)
keys = [];
if isempty(client_secret) && isempty(server_public)
    return
end
if isempty(client_secret) || isempty(server_public)
    error('rtpose:client', 'CURVE needs both CLIENT_SECRET and SERVER_PUBLIC');
end
client = rtpose_read_certificate(client_secret);
if isempty(client.secret_key)
    error('rtpose:client', ['%s holds no secret-key; pass the client''s .key_secret file as ' ...
          'CLIENT_SECRET'], client_secret);
end
server = rtpose_read_certificate(server_public);
keys = struct('client_public', client.public_key, 'client_secret', client.secret_key, ...
              'server_public', server.public_key);
end

function [summary, capture_ns, arrival_unix_s] = receive_poses(stream, keys, count, timeout_ms)
% CAPTURE_NS and ARRIVAL_UNIX_S: t_capture_ns and the time of receipt of each pose received.
if is_octave()
    runtime = 'octave';
else
    runtime = 'matlab';
end
summary = struct('client', runtime, 'received', 0, 'gaps', 0, 'missing', 0, 'restarts', 0, ...
                 'decode_errors', 0, 'timed_out', false, 'first_seq', [], 'last_seq', [], ...
                 'keypoints_shape', [], 'latency_p50_us', [], 'latency_p99_us', [], ...
                 'last_pose', []);
capture_ns = zeros(1, count, 'int64');
arrival_unix_s = zeros(1, count);
socket = RtposeSocket('SUB', stream, keys, 'pose');
closer = onCleanup(@() socket.close());
last = [];
while summary.received + summary.decode_errors < count
    frames = socket.recv(timeout_ms);
    if isempty(frames)
        summary.timed_out = true;
        break
    end
    arrival_s = unix_time_s();
    if numel(frames) < 2 || ~strcmp(char(frames{1}), 'pose')
        continue  % another topic that starts with "pose"
    end
    try
        pose = rtpose_decode_pose(frames{2});
    catch err
        fprintf(2, 'rtpose_client: %s\n', err.message);
        summary.decode_errors = summary.decode_errors + 1;
        continue
    end
    if isempty(last)
        summary.first_seq = pose.seq;
    elseif pose.seq > last.seq + 1
        summary.gaps = summary.gaps + 1;
        summary.missing = summary.missing + double(pose.seq - last.seq - 1);
    elseif pose.seq <= last.seq
        summary.restarts = summary.restarts + 1;
    end
    summary.received = summary.received + 1;
    capture_ns(summary.received) = pose.t_capture_ns;
    arrival_unix_s(summary.received) = arrival_s;
    last = pose;
end
capture_ns = capture_ns(1:summary.received);
arrival_unix_s = arrival_unix_s(1:summary.received);
if ~isempty(last)
    summary.last_seq = last.seq;
    summary.keypoints_shape = [size(last.keypoints, 1), size(last.keypoints, 2), 3];
    summary.last_pose = struct('seq', last.seq, 'frame_index', last.frame_index, ...
                               't_capture_ns', last.t_capture_ns, 'keypoints', last.keypoints);
end
end

function [ok, message, wall_offset_ns] = ping(control, keys, timeout_ms)
ok = false;
message = [];
wall_offset_ns = int64(0);
socket = RtposeSocket('REQ', control, keys);
closer = onCleanup(@() socket.close());
if ~socket.send(rtpose_msgpack_encode(struct('cmd', 'ping', 'id', 1)), timeout_ms)
    message = sprintf('the request could not be sent within %d ms', timeout_ms);
    return
end
frames = socket.recv(timeout_ms);
if isempty(frames)
    message = sprintf('no reply within %d ms', timeout_ms);
    return
end
reply = rtpose_msgpack_decode(frames{1});
ok = isstruct(reply) && isfield(reply, 'ok') && isequal(reply.ok, true);
if ok
    wall_offset_ns = reply.wall_offset_ns;
elseif isstruct(reply) && isfield(reply, 'error')
    message = reply.error;
else
    message = 'reply has no ok: true';
end
end

function seconds = unix_time_s()
if is_octave()
    seconds = time();  % gettimeofday: microseconds
else
    seconds = posixtime(datetime('now', 'TimeZone', 'UTC'));
end
end

function text = summary_json(summary)
% One JSON object; JSON has no NaN, so NaN (a keypoint not found) and [] become null.
names = fieldnames(summary);
parts = cell(1, numel(names));
for k = 1:numel(names)
    value = summary.(names{k});
    if strcmp(names{k}, 'last_pose') && ~isempty(value)
        encoded = sprintf('{"seq":%d,"frame_index":%d,"t_capture_ns":%d,"keypoints":%s}', ...
                          value.seq, value.frame_index, value.t_capture_ns, ...
                          json_nested(value.keypoints, summary.keypoints_shape));
    elseif strcmp(names{k}, 'keypoints_shape') && ~isempty(value)
        encoded = json_nested(value, numel(value));
    else
        encoded = json_scalar(value);
    end
    parts{k} = sprintf('"%s":%s', names{k}, encoded);
end
text = ['{', strjoin(parts, ','), '}'];
end

function text = json_nested(values, shape)
% VALUES (column-major, SHAPE) as nested JSON arrays, the first dimension outermost.
if numel(shape) == 1
    items = arrayfun(@json_scalar, values(:).', 'UniformOutput', false);
else
    rows = reshape(values, shape(1), []);
    items = cell(1, shape(1));
    for r = 1:shape(1)
        items{r} = json_nested(rows(r, :), shape(2:end));
    end
end
text = ['[', strjoin(items, ','), ']'];
end

function text = json_scalar(value)
if ischar(value)
    text = regexprep(value, '[\x00-\x1f]', ' ');
    text = ['"', regexprep(text, '(["\\])', '\\$1'), '"'];
elseif islogical(value) && value
    text = 'true';
elseif islogical(value)
    text = 'false';
elseif isempty(value) || (isfloat(value) && ~isfinite(value))
    text = 'null';
elseif isinteger(value) || value == fix(value)
    text = sprintf('%d', value);
else
    text = sprintf('%.17g', value);
end
end
