function bytes = rtpose_msgpack_encode(value)
%RTPOSE_MSGPACK_ENCODE Encode a control request (or another small value) as msgpack.
%   BYTES = RTPOSE_MSGPACK_ENCODE(VALUE) returns a uint8 row. VALUE may be
%     a scalar struct or a containers.Map   -> map (field names or char keys as str keys)
%     a cell                                -> array
%     a char row                            -> str (UTF-8)
%     a logical scalar                      -> bool
%     a real numeric scalar                 -> int when integer-valued, else float64
%     []                                    -> nil
%   e.g. RTPOSE_MSGPACK_ENCODE(struct('cmd', 'ping', 'id', 7)). Hand-written, as the decoder
%   (see README.md).

if ischar(value)
    if is_octave()
        text = uint8(value);  % Octave's char arrays hold UTF-8 bytes
    else
        text = unicode2native(value, 'UTF-8');
    end
    bytes = [length_header(numel(text), 160, 31, [217, 218, 219]), text(:).'];
elseif isnumeric(value) && isempty(value)
    bytes = uint8(192);
elseif islogical(value) && isscalar(value)
    bytes = uint8(194 + value);
elseif isstruct(value) && isscalar(value)
    bytes = encode_map(fieldnames(value).', struct2cell(value).');
elseif isa(value, 'containers.Map')
    bytes = encode_map(keys(value), values(value));
elseif iscell(value)
    bytes = length_header(numel(value), 144, 15, [0, 220, 221]);
    for k = 1:numel(value)
        bytes = [bytes, rtpose_msgpack_encode(value{k})]; %#ok<AGROW> small requests
    end
elseif isnumeric(value) && isscalar(value) && isreal(value)
    bytes = encode_number(value);
else
    error('rtpose:msgpack', 'cannot encode a %s of size %s as msgpack', class(value), ...
          mat2str(size(value)));
end
end

function bytes = encode_map(names, values)
bytes = length_header(numel(names), 128, 15, [0, 222, 223]);
for k = 1:numel(names)
    bytes = [bytes, rtpose_msgpack_encode(names{k}), rtpose_msgpack_encode(values{k})]; %#ok<AGROW>
end
end

function bytes = encode_number(value)
if isfloat(value) && (value ~= fix(value) || abs(value) >= 2^63)
    bytes = [uint8(203), big_endian(typecast(double(value), 'uint8'))];
elseif value >= 0 && value <= 127
    bytes = uint8(value);                                  % positive fixint
elseif value < 0 && value >= -32
    bytes = uint8(256 + double(value));                    % negative fixint
elseif isa(value, 'uint64') && value > uint64(intmax('int64'))
    bytes = [uint8(207), big_endian(typecast(value, 'uint8'))];
else
    bytes = [uint8(211), big_endian(typecast(int64(value), 'uint8'))];
end
end

function header = length_header(n, fix_base, fix_max, tags)
% The type byte (and length) of a str, array or map of N elements. TAGS: the 8, 16 and 32-bit
% length forms (0 where the type has none).
if n <= fix_max
    header = uint8(fix_base + n);
elseif n < 2^8 && tags(1) > 0
    header = uint8([tags(1), n]);
elseif n < 2^16
    header = [uint8(tags(2)), big_endian(typecast(uint16(n), 'uint8'))];
else
    header = [uint8(tags(3)), big_endian(typecast(uint32(n), 'uint8'))];
end
end
