function keys = rtpose_read_certificate(path)
%RTPOSE_READ_CERTIFICATE Read the CURVE keys of a pyzmq certificate file.
%   KEYS = RTPOSE_READ_CERTIFICATE(PATH) reads the `public-key = "..."` and `secret-key = "..."`
%   lines of a file written by `realtime-pose keys` or zmq.auth.create_certificates and returns
%   a struct with public_key and secret_key (40-character Z85 text; secret_key is '' in a
%   public ".key" file). Errors (identifier rtpose:certificate) name the file and what is wrong.

[file, message] = fopen(path, 'r');
if file < 0
    error('rtpose:certificate', ['cannot read certificate %s: %s (make key pairs with ' ...
          'realtime-pose keys --output FOLDER)'], path, message);
end
text = fread(file, Inf, '*char').';
fclose(file);
keys.public_key = key_value(text, 'public-key', path);
keys.secret_key = key_value(text, 'secret-key', path);
if isempty(keys.public_key)
    error('rtpose:certificate', '%s holds no public-key: not a pyzmq certificate file', path);
end
end

function key = key_value(text, name, path)
% The value of `NAME = "KEY"` (quotes optional, as in ZPL), or '' when the line is absent.
tokens = regexp(text, ['^\s*', name, '\s*=\s*"?([^"\s]*)'], 'tokens', 'once', 'lineanchors');
key = '';
if isempty(tokens)
    return
end
key = tokens{1};
z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
if numel(key) ~= 40 || ~all(ismember(key, z85))
    error('rtpose:certificate', '%s: %s is not a CURVE key (40 characters of Z85)', path, name);
end
end
