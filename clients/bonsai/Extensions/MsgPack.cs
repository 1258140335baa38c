using System;
using System.Collections.Generic;
using System.Text;

/// <summary>
/// The part of MessagePack that realtime-pose uses (docs/protocol.md, "Encoding"): maps with
/// string keys, arrays, integers, floats, strings, binary, nil and booleans. Integers decode to
/// <see cref="long"/> (<see cref="ulong"/> above long.MaxValue), floats to <see cref="double"/>,
/// maps to <see cref="Dictionary{TKey, TValue}"/> of string to object, arrays to object[].
/// </summary>
public static class MsgPack
{
    /// <summary>Decodes one complete msgpack value; throws <see cref="FormatException"/> otherwise.</summary>
    public static object Decode(byte[] data)
    {
        if (data == null) throw new ArgumentNullException("data");
        var position = 0;
        var value = Read(data, ref position, 0);
        if (position != data.Length)
        {
            throw new FormatException(string.Format("msgpack: {0} bytes after the value", data.Length - position));
        }
        return value;
    }

    /// <summary>Encodes a control request: a map of string keys to strings, integers, floats, booleans or null.</summary>
    public static byte[] Encode(IDictionary<string, object> map)
    {
        var output = new List<byte>();
        Write(output, map);
        return output.ToArray();
    }

    const int MaxDepth = 64;

    static object Read(byte[] b, ref int p, int depth)
    {
        if (depth > MaxDepth) throw new FormatException("msgpack: nested deeper than " + MaxDepth);
        var type = b[Advance(b, ref p, 1)];
        if (type <= 0x7f) return (long)type;
        if (type >= 0xe0) return (long)(sbyte)type;
        if ((type & 0xf0) == 0x80) return ReadMap(b, ref p, type & 0x0f, depth);
        if ((type & 0xf0) == 0x90) return ReadArray(b, ref p, type & 0x0f, depth);
        if ((type & 0xe0) == 0xa0) return ReadString(b, ref p, type & 0x1f);
        switch (type)
        {
            case 0xc0: return null;
            case 0xc2: return false;
            case 0xc3: return true;
            case 0xc4: return Copy(b, ref p, (int)ReadUnsigned(b, ref p, 1));
            case 0xc5: return Copy(b, ref p, (int)ReadUnsigned(b, ref p, 2));
            case 0xc6: return Copy(b, ref p, Length(ReadUnsigned(b, ref p, 4)));
            case 0xca: return (double)BitConverter.ToSingle(BigEndian(b, ref p, 4), 0);
            case 0xcb: return BitConverter.ToDouble(BigEndian(b, ref p, 8), 0);
            case 0xcc: return (long)ReadUnsigned(b, ref p, 1);
            case 0xcd: return (long)ReadUnsigned(b, ref p, 2);
            case 0xce: return (long)ReadUnsigned(b, ref p, 4);
            case 0xcf:
                var big = ReadUnsigned(b, ref p, 8);
                return big <= long.MaxValue ? (object)(long)big : big;
            case 0xd0: return (long)(sbyte)ReadUnsigned(b, ref p, 1);
            case 0xd1: return (long)(short)ReadUnsigned(b, ref p, 2);
            case 0xd2: return (long)(int)ReadUnsigned(b, ref p, 4);
            case 0xd3: return (long)ReadUnsigned(b, ref p, 8);
            case 0xd9: return ReadString(b, ref p, (int)ReadUnsigned(b, ref p, 1));
            case 0xda: return ReadString(b, ref p, (int)ReadUnsigned(b, ref p, 2));
            case 0xdb: return ReadString(b, ref p, Length(ReadUnsigned(b, ref p, 4)));
            case 0xdc: return ReadArray(b, ref p, (int)ReadUnsigned(b, ref p, 2), depth);
            case 0xdd: return ReadArray(b, ref p, Length(ReadUnsigned(b, ref p, 4)), depth);
            case 0xde: return ReadMap(b, ref p, (int)ReadUnsigned(b, ref p, 2), depth);
            case 0xdf: return ReadMap(b, ref p, Length(ReadUnsigned(b, ref p, 4)), depth);
            default:
                throw new FormatException(string.Format("msgpack: type 0x{0:x2} (ext) is not used by realtime-pose", type));
        }
    }

    static Dictionary<string, object> ReadMap(byte[] b, ref int p, int count, int depth)
    {
        if (count > (b.Length - p) / 2) throw new FormatException("msgpack: map longer than the message");
        var map = new Dictionary<string, object>(count);
        for (int i = 0; i < count; i++)
        {
            var key = Read(b, ref p, depth + 1) as string;
            if (key == null) throw new FormatException("msgpack: a map key is not a string");
            map[key] = Read(b, ref p, depth + 1);
        }
        return map;
    }

    static object[] ReadArray(byte[] b, ref int p, int count, int depth)
    {
        if (count > b.Length - p) throw new FormatException("msgpack: array longer than the message");
        var items = new object[count];
        for (int i = 0; i < count; i++) items[i] = Read(b, ref p, depth + 1);
        return items;
    }

    static string ReadString(byte[] b, ref int p, int length)
    {
        return Encoding.UTF8.GetString(b, Advance(b, ref p, length), length);
    }

    static byte[] Copy(byte[] b, ref int p, int length)
    {
        var start = Advance(b, ref p, length);
        var bytes = new byte[length];
        Buffer.BlockCopy(b, start, bytes, 0, length);
        return bytes;
    }

    static ulong ReadUnsigned(byte[] b, ref int p, int size)
    {
        var start = Advance(b, ref p, size);
        ulong value = 0;
        for (int i = 0; i < size; i++) value = (value << 8) | b[start + i];
        return value;
    }

    static byte[] BigEndian(byte[] b, ref int p, int size)
    {
        var bytes = Copy(b, ref p, size);
        if (BitConverter.IsLittleEndian) Array.Reverse(bytes);
        return bytes;
    }

    static int Length(ulong length)
    {
        if (length > int.MaxValue) throw new FormatException("msgpack: length beyond 2 GiB");
        return (int)length;
    }

    // Moves past count bytes and returns where they start.
    static int Advance(byte[] b, ref int p, int count)
    {
        if (count < 0 || count > b.Length - p) throw new FormatException("msgpack: message ends early");
        p += count;
        return p - count;
    }

    static void Write(List<byte> output, object value)
    {
        if (value == null) { output.Add(0xc0); return; }
        if (value is bool) { output.Add((bool)value ? (byte)0xc3 : (byte)0xc2); return; }
        if (value is string) { WriteString(output, (string)value); return; }
        if (value is int || value is long)
        {
            var number = Convert.ToInt64(value);
            if (number >= 0 && number <= 0x7f) output.Add((byte)number);
            else { output.Add(0xd3); WriteBigEndian(output, BitConverter.GetBytes(number)); }
            return;
        }
        if (value is double || value is float)
        {
            output.Add(0xcb);
            WriteBigEndian(output, BitConverter.GetBytes(Convert.ToDouble(value)));
            return;
        }
        var map = value as IDictionary<string, object>;
        if (map != null)
        {
            if (map.Count > 0xffff) throw new ArgumentException("msgpack: map too large for a control request");
            if (map.Count <= 15) output.Add((byte)(0x80 | map.Count));
            else { output.Add(0xde); output.Add((byte)(map.Count >> 8)); output.Add((byte)map.Count); }
            foreach (var pair in map)
            {
                WriteString(output, pair.Key);
                Write(output, pair.Value);
            }
            return;
        }
        throw new ArgumentException("msgpack: cannot encode a " + value.GetType().Name + " in a control request");
    }

    static void WriteString(List<byte> output, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        if (bytes.Length <= 31) output.Add((byte)(0xa0 | bytes.Length));
        else if (bytes.Length <= 0xff) { output.Add(0xd9); output.Add((byte)bytes.Length); }
        else if (bytes.Length <= 0xffff) { output.Add(0xda); output.Add((byte)(bytes.Length >> 8)); output.Add((byte)bytes.Length); }
        else throw new ArgumentException("msgpack: string too long for a control request");
        output.AddRange(bytes);
    }

    static void WriteBigEndian(List<byte> output, byte[] littleOrBig)
    {
        if (BitConverter.IsLittleEndian) Array.Reverse(littleOrBig);
        output.AddRange(littleOrBig);
    }
}
