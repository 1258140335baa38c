classdef RtposeSocket < handle
    %RTPOSESOCKET A ZeroMQ socket of a realtime-pose client: SUB or REQ, with CURVE when asked.
    %   S = RTPOSESOCKET('SUB', ADDRESS, KEYS, TOPIC) subscribes to TOPIC (e.g. 'pose') on the
    %   session's stream; S = RTPOSESOCKET('REQ', ADDRESS, KEYS) talks to its control socket.
    %   KEYS is a struct with client_public, client_secret and server_public (Z85 text, see
    %   rtpose_read_certificate), or [] for a plain connection (loopback only).
    %
    %   FRAMES = S.recv(TIMEOUT_MS) waits up to TIMEOUT_MS for one message and returns its
    %   frames (a cell of uint8 rows), or {} on timeout. S.send(BYTES, TIMEOUT_MS) sends one
    %   frame, waiting at most TIMEOUT_MS for the socket to take it (false if it did not).
    %   S.close() closes the socket; so does clearing S.
    %
    %   In Octave the socket comes from the zeromq package (Debian: octave-zeromq; or
    %   pkg install -forge zeromq), which has CURVE. In MATLAB it comes from Python's pyzmq
    %   through MATLAB's Python interface (pyenv pointing at a Python with pyzmq).

    properties (SetAccess = private)
        address = ''
        backend = ''  % 'octave-zeromq' or 'pyzmq'
    end

    properties (Access = private)
        handle = []
        context = []  % pyzmq only: the Octave package keeps one context of its own
    end

    properties (Constant, Access = private)
        % zmq_recv in Octave's zeromq package truncates silently to the size it is given
        max_message_bytes = 2^22
    end

    methods
        function obj = RtposeSocket(type, address, keys, topic)
            if ~any(strcmp(type, {'SUB', 'REQ'}))
                error('rtpose:socket', 'socket type must be ''SUB'' or ''REQ'', not ''%s''', type);
            end
            obj.address = address;
            if is_octave()
                obj.backend = 'octave-zeromq';
                obj.open_octave(type, keys);
                if strcmp(type, 'SUB')
                    zmq_setsockopt(obj.handle, ZMQ_SUBSCRIBE, topic);
                end
                zmq_connect(obj.handle, address);
            else
                obj.backend = 'pyzmq';
                zmq = py.importlib.import_module('zmq');
                obj.open_pyzmq(zmq, type, keys);
                if strcmp(type, 'SUB')
                    obj.handle.setsockopt(zmq.SUBSCRIBE, py.bytes(uint8(topic)));
                end
                obj.handle.connect(address);
            end
        end

        function frames = recv(obj, timeout_ms)
            frames = {};
            if is_octave()
                if zmq_poll(obj.handle, timeout_ms) == 0
                    return
                end
                frames = {obj.recv_frame_octave()};
                while zmq_getsockopt(obj.handle, ZMQ_RCVMORE)
                    frames{end + 1} = obj.recv_frame_octave(); %#ok<AGROW> 2 frames
                end
            else
                if double(obj.handle.poll(int32(timeout_ms))) == 0
                    return
                end
                frames = cellfun(@uint8, cell(obj.handle.recv_multipart()), ...
                                 'UniformOutput', false);
            end
        end

        function sent = send(obj, bytes, timeout_ms)
            % SENT = S.send(BYTES, TIMEOUT_MS): false when the message could not be queued
            % within TIMEOUT_MS (a REQ socket with no ready peer, e.g. refused CURVE keys,
            % would otherwise block for ever).
            if nargin < 3
                timeout_ms = 5000;
            end
            sent = false;
            started = tic();
            while ~sent
                if is_octave()
                    sent = zmq_send(obj.handle, uint8(bytes), ZMQ_DONTWAIT) >= 0;
                else
                    try
                        obj.handle.send(py.bytes(uint8(bytes)), int32(1));  % zmq.NOBLOCK
                        sent = true;
                    catch
                        sent = false;
                    end
                end
                if ~sent
                    if toc(started) * 1000 >= timeout_ms
                        return
                    end
                    pause(0.01);
                end
            end
        end

        function close(obj)
            if isempty(obj.handle)
                return
            end
            if is_octave()
                % The package sets no linger, but never terminates its context either: a
                % request left unanswered does not hold Octave at exit.
                zmq_close(obj.handle);
            else
                obj.handle.close();  % linger 0, set on opening
                obj.context.term();
            end
            obj.handle = [];
            obj.context = [];
        end

        function delete(obj)
            obj.close();
        end
    end

    methods (Access = private)
        function open_octave(obj, type, keys)
            if ~exist('zmq_socket', 'file')
                try
                    pkg('load', 'zeromq');
                catch err
                    error('rtpose:socket', ['Octave''s zeromq package is missing (%s): ' ...
                          'apt-get install octave-zeromq, or pkg install -forge zeromq'], ...
                          err.message);
                end
            end
            if strcmp(type, 'SUB')
                obj.handle = zmq_socket(ZMQ_SUB);
            else
                obj.handle = zmq_socket(ZMQ_REQ);
            end
            if ~isempty(keys)
                % 40-character Z85 keys; the server key makes this socket a CURVE client
                zmq_setsockopt(obj.handle, ZMQ_CURVE_SERVERKEY, keys.server_public);
                zmq_setsockopt(obj.handle, ZMQ_CURVE_PUBLICKEY, keys.client_public);
                zmq_setsockopt(obj.handle, ZMQ_CURVE_SECRETKEY, keys.client_secret);
            end
        end

        function open_pyzmq(obj, zmq, type, keys)
            obj.context = zmq.Context();
            if strcmp(type, 'SUB')
                obj.handle = obj.context.socket(zmq.SUB);
            else
                obj.handle = obj.context.socket(zmq.REQ);
            end
            obj.handle.setsockopt(zmq.LINGER, int32(0));
            if ~isempty(keys)
                obj.handle.setsockopt(zmq.CURVE_SERVERKEY, py.bytes(uint8(keys.server_public)));
                obj.handle.setsockopt(zmq.CURVE_PUBLICKEY, py.bytes(uint8(keys.client_public)));
                obj.handle.setsockopt(zmq.CURVE_SECRETKEY, py.bytes(uint8(keys.client_secret)));
            end
        end

        function frame = recv_frame_octave(obj)
            frame = zmq_recv(obj.handle, obj.max_message_bytes);
            if numel(frame) >= obj.max_message_bytes
                error('rtpose:socket', 'a message from %s is larger than %d bytes', ...
                      obj.address, obj.max_message_bytes);
            end
        end
    end
end
