using System;
using System.IO;
using System.Text.RegularExpressions;

/// <summary>
/// Z85 keys from pyzmq certificate files (<c>realtime-pose keys</c> or
/// <c>zmq.auth.create_certificates</c>): <c>public-key = "..."</c> and, in a <c>.key_secret</c>
/// file, <c>secret-key = "..."</c>.
/// </summary>
public static class CurveKeyFile
{
    const string Z85Characters = @"0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#";

    /// <summary>The 40-character Z85 key <paramref name="name"/> of the file, or null if it has none.</summary>
    public static string ReadKey(string path, string name)
    {
        if (string.IsNullOrEmpty(path)) throw new ArgumentException("no CURVE key file given");
        if (!File.Exists(path))
        {
            throw new FileNotFoundException(string.Format(
                "CURVE key file {0} not found (relative paths start at {1})", path, Environment.CurrentDirectory), path);
        }
        var line = new Regex(
            "^\\s*" + Regex.Escape(name) + "\\s*=\\s*(?:\"([^\"]*)\"|'([^']*)'|(\\S+))\\s*$",
            RegexOptions.Multiline);
        var match = line.Match(File.ReadAllText(path));
        if (!match.Success) return null;
        var value = match.Groups[1].Success ? match.Groups[1].Value
            : match.Groups[2].Success ? match.Groups[2].Value
            : match.Groups[3].Value;
        if (!Regex.IsMatch(value, "^[" + Z85Characters + "]{40}$"))
        {
            throw new FormatException(string.Format("{0}: {1} is not a 40-character Z85 key", path, name));
        }
        return value;
    }

    /// <summary>The public key of a <c>.key</c> or <c>.key_secret</c> file.</summary>
    public static string ReadPublicKey(string path)
    {
        var key = ReadKey(path, "public-key");
        if (key == null) throw new FormatException(path + " holds no public-key; is it a pyzmq certificate?");
        return key;
    }

    /// <summary>The secret key of a <c>.key_secret</c> file.</summary>
    public static string ReadSecretKey(string path)
    {
        var key = ReadKey(path, "secret-key");
        if (key == null)
        {
            throw new FormatException(path + " holds no secret-key: give the client's .key_secret file, not its .key");
        }
        return key;
    }
}
