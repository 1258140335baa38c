using System;
using NetMQ;

/// <summary>Makes a NetMQ socket a CURVE client of the rig (before it connects).</summary>
public static class CurveClient
{
    /// <summary>
    /// Sets this client's key pair (from its <c>.key_secret</c> file) and the rig's public key
    /// (from <c>rig.key</c>). Both empty: the socket stays plain, for a rig on loopback.
    /// </summary>
    public static void Apply(NetMQSocket socket, string clientSecretKeyFile, string serverPublicKeyFile)
    {
        var hasClient = !string.IsNullOrEmpty(clientSecretKeyFile);
        var hasServer = !string.IsNullOrEmpty(serverPublicKeyFile);
        if (!hasClient && !hasServer) return;
        if (hasClient != hasServer)
        {
            throw new ArgumentException("CURVE needs both ClientSecretKeyFile (.key_secret) and ServerPublicKeyFile (rig.key)");
        }
        socket.Options.CurveServerCertificate = NetMQCertificate.FromPublicKey(CurveKeyFile.ReadPublicKey(serverPublicKeyFile));
        socket.Options.CurveCertificate = new NetMQCertificate(
            CurveKeyFile.ReadSecretKey(clientSecretKeyFile), CurveKeyFile.ReadPublicKey(clientSecretKeyFile));
    }
}
