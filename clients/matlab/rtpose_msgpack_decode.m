function [value, next] = rtpose_msgpack_decode(bytes, start)
%RTPOSE_MSGPACK_DECODE Decode a msgpack value from a uint8 vector.
%   VALUE = RTPOSE_MSGPACK_DECODE(BYTES) decodes the one msgpack value that BYTES holds; bytes
%   left over are an error.
%   [VALUE, NEXT] = RTPOSE_MSGPACK_DECODE(BYTES, START) decodes the value that starts at byte
%   START and returns the index of the byte after it.
%
%   Types as decoded (maps as jsondecode does it):
%     map           scalar struct; a key that is not a valid field name is made one with
%                   matlab.lang.makeValidName (map keys must be strings)
%     array         1-by-N double when every element is a float64 (coordinates), else 1-by-N
%                   cell
%     str           char row (UTF-8)
%     bin           uint8 row
%     int, uint     int64 (uint64 above intmax('int64')), whatever width was sent
%     float32/64    double
%     nil           []
%     true, false   logical
%   Extension types are refused (error identifier rtpose:msgpack). Hand-written because neither
%   MATLAB nor Octave ships a msgpack decoder (see README.md); it covers what realtime-pose's
%   protocol v1 sends.

if nargin < 2
    start = 1;
end
persistent little octave
if isempty(little)
    [~, ~, endian] = computer();
    little = endian == 'L';
    octave = exist('OCTAVE_VERSION', 'builtin') ~= 0;
end
bytes = reshape(bytes, 1, []);
[value, next] = decode_at(bytes, start, little, octave);
if nargin < 2 && next <= numel(bytes)
    error('rtpose:msgpack', 'msgpack data has %d bytes after its value', numel(bytes) - next + 1);
end
end

% The common types (fixint, fixstr, float64, fix map and array) are decoded inline: a function
% call costs tens of microseconds in Octave, and a pose has a hundred values.
% LITTLE: the host is little-endian, so msgpack's big-endian numbers are reversed for typecast.
% OCTAVE: char arrays hold UTF-8 bytes (Octave), else UTF-16 (MATLAB).

function [value, i] = decode_at(b, i, little, octave)
if i > numel(b)
    ends_early(b, i);
end
tag = double(b(i));
i = i + 1;
if tag <= 127                      % positive fixint
    value = int64(tag);
elseif tag >= 224                  % negative fixint
    value = int64(tag - 256);
elseif tag >= 160 && tag <= 191    % fixstr
    last = i + tag - 161;
    if last > numel(b)
        ends_early(b, last);
    end
    if octave
        value = char(b(i:last));
    else
        value = native2unicode(b(i:last), 'UTF-8');
    end
    i = last + 1;
elseif tag == 203                  % float64
    if i + 7 > numel(b)
        ends_early(b, i + 7);
    end
    if little
        value = typecast(b(i + 7:-1:i), 'double');
    else
        value = typecast(b(i:i + 7), 'double');
    end
    i = i + 8;
elseif tag <= 143                  % fixmap
    [value, i] = decode_map(b, i, tag - 128, little, octave);
elseif tag <= 159                  % fixarray
    [value, i] = decode_array(b, i, tag - 144, little, octave);
else
    switch tag
        case 192                   % nil
            value = [];
        case 194                   % false
            value = false;
        case 195                   % true
            value = true;
        case {196, 197, 198}       % bin 8/16/32
            [n, i] = read_length(b, i, tag - 196, little);
            if i + n - 1 > numel(b)
                ends_early(b, i + n - 1);
            end
            value = b(i:i + n - 1);
            i = i + n;
        case 202                   % float32
            value = double(typecast(ordered(b, i, 4, little), 'single'));
            i = i + 4;
        case {204, 205, 206, 207}  % uint 8/16/32/64
            width = 2 ^ (tag - 204);
            value = typecast(ordered(b, i, width, little), unsigned_type(tag - 204));
            if tag < 207 || value <= uint64(intmax('int64'))  % (same-class comparison)
                value = int64(value);
            end
            i = i + width;
        case {208, 209, 210, 211}  % int 8/16/32/64
            width = 2 ^ (tag - 208);
            value = int64(typecast(ordered(b, i, width, little), signed_type(tag - 208)));
            i = i + width;
        case {217, 218, 219}       % str 8/16/32
            [n, i] = read_length(b, i, tag - 217, little);
            if i + n - 1 > numel(b)
                ends_early(b, i + n - 1);
            end
            if octave
                value = char(b(i:i + n - 1));
            else
                value = native2unicode(b(i:i + n - 1), 'UTF-8');
            end
            i = i + n;
        case {220, 221}            % array 16/32
            [n, i] = read_length(b, i, tag - 219, little);
            [value, i] = decode_array(b, i, n, little, octave);
        case {222, 223}            % map 16/32
            [n, i] = read_length(b, i, tag - 221, little);
            [value, i] = decode_map(b, i, n, little, octave);
        otherwise
            error('rtpose:msgpack', 'unsupported msgpack type 0x%02x at byte %d', tag, i - 1);
    end
end
end

function [value, i] = decode_array(b, i, n, little, octave)
% Fast path: N float64 values in a row (9 bytes each) become one double row.
last = i + 9 * n - 1;
if n > 0 && last <= numel(b) && all(b(i:9:last) == 203)
    if little
        offsets = (8:-1:1).';
    else
        offsets = (1:8).';
    end
    value = typecast(b(reshape(bsxfun(@plus, offsets, i + 9 * (0:n - 1)), 1, [])), 'double');
    i = last + 1;
    return
end
value = cell(1, n);
for k = 1:n
    [value{k}, i] = decode_at(b, i, little, octave);
end
end

function [value, i] = decode_map(b, i, n, little, octave)
value = struct();
for k = 1:n
    at = i;
    [name, i] = decode_at(b, i, little, octave);
    if ~ischar(name)
        error('rtpose:msgpack', 'msgpack map key at byte %d is not a string', at);
    end
    if ~isvarname(name)
        name = matlab.lang.makeValidName(name);
    end
    [value.(name), i] = decode_at(b, i, little, octave);  % a repeated key: the last one wins
end
end

function [n, i] = read_length(b, i, log2_width, little)
% The 1, 2 or 4-byte length of a str, bin, array or map.
n = double(typecast(ordered(b, i, 2 ^ log2_width, little), unsigned_type(log2_width)));
i = i + 2 ^ log2_width;
end

function chunk = ordered(b, i, width, little)
% The WIDTH bytes of a big-endian number at byte I, in host order for typecast.
if i + width - 1 > numel(b)
    ends_early(b, i + width - 1);
end
if little
    chunk = b(i + width - 1:-1:i);
else
    chunk = b(i:i + width - 1);
end
end

function type = unsigned_type(log2_width)
types = {'uint8', 'uint16', 'uint32', 'uint64'};
type = types{log2_width + 1};
end

function type = signed_type(log2_width)
types = {'int8', 'int16', 'int32', 'int64'};
type = types{log2_width + 1};
end

function ends_early(b, i)
error('rtpose:msgpack', 'msgpack data ends early (byte %d of %d)', i, numel(b));
end
