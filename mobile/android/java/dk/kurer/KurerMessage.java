package dk.kurer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/** A stored message as on_message gives it (kurer_message). Show levelName() with it. */
public final class KurerMessage {
    public static final int RECEIVED = 0;
    public static final int QUARANTINED = 1;
    public static final int PENDING = 2;
    public static final int SENT = 3;
    public static final int FAILED = 4;

    /** The envelope id (the sender's), the key to deduplicate by. */
    public final byte[] id;
    public final boolean outgoing;
    public final String peer;
    public final int peerDevice;
    public final int level;
    /** The text; "" for a quarantined message. */
    public final String body;
    public final long sentAt;
    public final long receivedAt;
    public final int state;
    /** Why quarantined or failed (a KurerError code), else 0. */
    public final int reason;

    private KurerMessage(byte[] id, boolean outgoing, String peer, int peerDevice, int level,
            String body, long sentAt, long receivedAt, int state, int reason) {
        this.id = id;
        this.outgoing = outgoing;
        this.peer = peer;
        this.peerDevice = peerDevice;
        this.level = level;
        this.body = body;
        this.sentAt = sentAt;
        this.receivedAt = receivedAt;
        this.state = state;
        this.reason = reason;
    }

    /* Called by the native code on the library thread: the texts come as UTF-8 bytes (JNI's
     * own strings are modified UTF-8, wrong for NUL and characters outside the BMP); the copy
     * of the body's bytes is wiped once it is decoded. */
    static KurerMessage fromNative(byte[] id, boolean outgoing, byte[] peer, int peerDevice,
            int level, byte[] body, long sentAt, long receivedAt, int state, int reason) {
        String text = new String(body, StandardCharsets.UTF_8);
        Arrays.fill(body, (byte) 0);
        return new KurerMessage(id, outgoing, new String(peer, StandardCharsets.UTF_8),
                peerDevice, level, text, sentAt, receivedAt, state, reason);
    }

    /** The marking to show with the message ("CONFIDENTIAL", ...). */
    public String levelName() {
        return Kurer.levelName(level);
    }
}
