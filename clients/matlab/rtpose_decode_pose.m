function pose = rtpose_decode_pose(payload)
%RTPOSE_DECODE_POSE Decode the payload of a realtime-pose v1 `pose` message.
%   POSE = RTPOSE_DECODE_POSE(PAYLOAD) takes the msgpack bytes (uint8) of a `pose` message and
%   returns a struct with
%     seq           int64; +1 per published pose, a jump means poses were lost
%     frame_index   int64; the camera frame the pose comes from
%     t_capture_ns  int64; capture time, CLOCK_MONOTONIC of the publishing host
%     keypoints     A-by-K-by-3 double: animal, keypoint, [x_px, y_px, likelihood]; NaN where
%                   a keypoint was not found
%     message       the whole decoded map (a struct, see rtpose_msgpack_decode), for the
%                   other fields, e.g. message.latency_ns.total
%   Errors (identifier rtpose:pose) say which field is missing or malformed. Unknown fields are
%   ignored, as the protocol asks (docs/protocol.md).

message = rtpose_msgpack_decode(payload);
if ~isstruct(message)
    error('rtpose:pose', 'pose payload is not a msgpack map');
end
version = integer_field(message, 'v');
if version ~= 1
    error('rtpose:pose', 'pose has schema version v=%d; this client reads v1', version);
end
pose.seq = integer_field(message, 'seq');
pose.frame_index = integer_field(message, 'frame_index');
pose.t_capture_ns = integer_field(message, 't_capture_ns');
pose.keypoints = keypoint_array(message);
pose.message = message;
end

function value = integer_field(message, name)
if ~isfield(message, name) || ~isa(message.(name), 'int64') || ~isscalar(message.(name))
    error('rtpose:pose', 'pose has no integer ''%s''', name);
end
value = message.(name);
end

function keypoints = keypoint_array(message)
if ~isfield(message, 'keypoints') || ~iscell(message.keypoints)
    error('rtpose:pose', 'pose ''keypoints'' is missing or not an array of animals');
end
animals = message.keypoints;
n_animals = numel(animals);
n_keypoints = 0;
if n_animals > 0
    n_keypoints = numel(animals{1});
end
keypoints = nan(n_animals, n_keypoints, 3);
for a = 1:n_animals
    if ~iscell(animals{a}) || numel(animals{a}) ~= n_keypoints
        error('rtpose:pose', 'pose ''keypoints''{%d} is not an array of %d keypoints', a, ...
              n_keypoints);
    end
    for k = 1:n_keypoints
        point = animals{a}{k};
        if isa(point, 'double') && numel(point) == 3  % three float64: the decoder's fast path
            keypoints(a, k, :) = point;
        elseif iscell(point) && numel(point) == 3     % with a nil (not found) or an integer
            for c = 1:3
                if ~isempty(point{c})
                    keypoints(a, k, c) = double(point{c});
                end
            end
        else
            error('rtpose:pose', 'pose ''keypoints''{%d}{%d} is not [x, y, likelihood]', a, k);
        end
    end
end
end
