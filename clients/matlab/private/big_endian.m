function bytes = big_endian(bytes)
%BIG_ENDIAN Reorder the bytes of one number between network (msgpack) and host order.
%   typecast works in host order; msgpack is big-endian. The same reversal converts both ways.
persistent little
if isempty(little)
    [~, ~, endian] = computer();
    little = endian == 'L';
end
if little
    bytes = bytes(end:-1:1);
end
end
