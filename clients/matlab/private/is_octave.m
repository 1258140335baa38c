function octave = is_octave()
%IS_OCTAVE True when running in GNU Octave, false in MATLAB.
persistent cached
if isempty(cached)
    cached = exist('OCTAVE_VERSION', 'builtin') ~= 0;
end
octave = cached;
end
