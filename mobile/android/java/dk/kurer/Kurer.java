package dk.kurer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One open device home (a kurer * handle of libkurer), for Android and the desktop JVM.
 *
 * <p>Threads (docs/client.md, docs/mobile.md): every method may be called from any thread. The
 * handle runs a library thread of its own; the *Async methods return at once and their
 * completion ({@link KurerCallback}) and every event ({@link KurerListener}) run later on that
 * thread, one at a time. The blocking methods (connect, send, refresh, flush) wait for their
 * completion: not from a listener or a completion (they throw ESTATE there). {@link #close()}
 * waits for calls that are under way on other threads, then makes every later call throw
 * ECLOSED; not from a callback.
 *
 * <p>Errors: every failure is a {@link KurerException} with the library's code, name and
 * category. Texts cross as UTF-8 bytes; the binding's copies of texts, passphrases and keys are
 * wiped after use (a Java String cannot be: phones open with a raw key from the keystore).
 */
public final class Kurer implements AutoCloseable {
    static {
        System.loadLibrary("kurer_jni");
    }

    /** Connection states (kurer_conn_state). */
    public static final int OFFLINE = 0;
    public static final int CONNECTING = 1;
    public static final int ONLINE = 2;
    public static final int WAITING = 3;

    /** Classification levels (kurer_level). */
    public static final int UNCLASSIFIED = 1;
    public static final int RESTRICTED = 2;
    public static final int CONFIDENTIAL = 3;

    /** The longest text, in bytes of UTF-8 (KURER_TEXT_MAX). */
    public static final int TEXT_MAX = 63583;
    /** A raw store key's length (KURER_KEY_LEN). */
    public static final int KEY_LEN = 32;

    /* Callers inside a native call, and bit 31 once close() has begun: an atomic count so that
     * the library thread never blocks on it (close() may be waiting in kurer_close for that
     * thread to deliver what is queued). */
    private static final int CLOSING = 0x80000000;
    private final AtomicInteger users = new AtomicInteger();
    private final Object closed = new Object();
    /* The native state (a struct holding the kurer * and the listener's global reference);
     * written once here, set to 0 by close() once no call uses it. */
    private volatile long handle;

    private Kurer(long handle) {
        this.handle = handle;
    }

    /** Opens a home with a raw 32-byte key (from Android Keystore): no key derivation. */
    public static Kurer open(String home, byte[] key32) throws KurerException {
        checkKey(key32);
        return new Kurer(nOpenKey(utf8(home), key32));
    }

    /** Opens a home with a passphrase (tests and desktops; Argon2id runs on this thread). */
    public static Kurer open(String home, String passphrase) throws KurerException {
        byte[] p = utf8(passphrase);
        try {
            return new Kurer(nOpenPass(utf8(home), p));
        } finally {
            Arrays.fill(p, (byte) 0);
        }
    }

    /**
     * Creates a device home protected by a raw 32-byte key and writes HOME/device.csr for the
     * administrator. relay is HOST:PORT, relayKey the relay's 32-byte X25519 key, root the pinned
     * root certificate's bytes.
     */
    public static Kurer create(String home, String user, int deviceId, String relay,
            byte[] relayKey, byte[] root, byte[] key32) throws KurerException {
        checkKey(key32);
        checkKey(relayKey);
        return new Kurer(nCreate(utf8(home), utf8(user), deviceId, utf8(relay), relayKey, root,
                key32));
    }

    private static void checkKey(byte[] k) throws KurerException {
        if (k == null || k.length != KEY_LEN) {
            throw KurerException.of(KurerError.EINVAL);
        }
    }

    /**
     * Stops the library thread (what is queued completes with ECLOSED, events not yet given are
     * given first), closes the home and wipes its keys. Waits for calls under way on other
     * threads; later calls throw ECLOSED. Idempotent. Not from a callback (ESTATE).
     */
    @Override
    public void close() throws KurerException {
        if (nInCallback()) {
            throw KurerException.of(KurerError.ESTATE);
        }
        int prev = users.getAndUpdate(u -> u | CLOSING);
        if ((prev & CLOSING) != 0) {
            return;
        }
        boolean interrupted = false;
        synchronized (closed) {
            while ((users.get() & ~CLOSING) != 0) {
                try {
                    closed.wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        long h = handle;
        handle = 0;
        nClose(h);
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private long enter() throws KurerException {
        for (;;) {
            int u = users.get();
            if ((u & CLOSING) != 0) {
                throw KurerException.of(KurerError.ECLOSED);
            }
            if (users.compareAndSet(u, u + 1)) {
                return handle;
            }
        }
    }

    private void leave() {
        if (users.decrementAndGet() == CLOSING) {
            synchronized (closed) {
                closed.notifyAll();
            }
        }
    }

    /**
     * Sets the listener (null clears it). Setting one gives again, oldest first, every stored
     * message not yet reported: set it before connecting so that none is missed.
     */
    public void setListener(KurerListener l) throws KurerException {
        long h = enter();
        try {
            nSetListener(h, l);
        } finally {
            leave();
        }
    }

    /** Asks for the connection; cb (may be null) gets the result. */
    public void connectAsync(int timeoutMs, KurerCallback cb) throws KurerException {
        long h = enter();
        try {
            nConnectAsync(h, timeoutMs, cb);
        } finally {
            leave();
        }
    }

    /**
     * Sends text at level to every device of to; cb (may be null) gets 0 once the relay has
     * accepted it for every device, or the error, with the stored message's id.
     */
    public void sendAsync(String to, int level, String text, int timeoutMs, KurerCallback cb)
            throws KurerException {
        sendOrQueue(to, level, text, timeoutMs, cb, false);
    }

    /** The first half of sendAsync: committed to the outbox, sent by flush or a later connect. */
    public void queueAsync(String to, int level, String text, int timeoutMs, KurerCallback cb)
            throws KurerException {
        sendOrQueue(to, level, text, timeoutMs, cb, true);
    }

    private void sendOrQueue(String to, int level, String text, int timeoutMs, KurerCallback cb,
            boolean queue) throws KurerException {
        byte[] t = utf8(text);
        long h = enter();
        try {
            nSendAsync(h, utf8(to), level, t, timeoutMs, cb, queue);
        } finally {
            leave();
            Arrays.fill(t, (byte) 0);
        }
    }

    /** Asks the directory for user's devices; cb's value is the number the relay listed. */
    public void refreshAsync(String user, int timeoutMs, KurerCallback cb) throws KurerException {
        long h = enter();
        try {
            nRefreshAsync(h, utf8(user), timeoutMs, cb);
        } finally {
            leave();
        }
    }

    /** Sends everything in the outbox now. */
    public void flushAsync(int timeoutMs, KurerCallback cb) throws KurerException {
        long h = enter();
        try {
            nFlushAsync(h, timeoutMs, cb);
        } finally {
            leave();
        }
    }

    /** A push arrived: connect, take everything the relay holds, disconnect, then cb. */
    public void wake(int timeoutMs, KurerCallback cb) throws KurerException {
        long h = enter();
        try {
            nWake(h, timeoutMs, cb);
        } finally {
            leave();
        }
    }

    /** Connects and waits (kurer_connect). Not from a callback. */
    public void connect(int timeoutMs) throws KurerException {
        long h = enter();
        try {
            nConnect(h, timeoutMs);
        } finally {
            leave();
        }
    }

    /**
     * Sends and waits until the relay accepted it for every device (kurer_send). A policy
     * refusal throws ECLEARANCE (or a certificate error) with {@link KurerException#refusal()}.
     */
    public void send(String to, int level, String text, int timeoutMs) throws KurerException {
        byte[] t = utf8(text);
        long h = enter();
        try {
            nSend(h, utf8(to), level, t, timeoutMs);
        } finally {
            leave();
            Arrays.fill(t, (byte) 0);
        }
    }

    /** Refreshes user's devices and waits; returns the number the relay listed. */
    public long refresh(String user, int timeoutMs) throws KurerException {
        long h = enter();
        try {
            return nRefresh(h, utf8(user), timeoutMs);
        } finally {
            leave();
        }
    }

    /** Sends the outbox and waits. */
    public void flush(int timeoutMs) throws KurerException {
        long h = enter();
        try {
            nFlush(h, timeoutMs);
        } finally {
            leave();
        }
    }

    /** Acks what is committed and closes the connection, waiting at most 2.5 s. */
    public void disconnect() throws KurerException {
        long h = enter();
        try {
            nDisconnect(h, false);
        } finally {
            leave();
        }
    }

    /** disconnect without waiting. */
    public void disconnectAsync() throws KurerException {
        long h = enter();
        try {
            nDisconnect(h, true);
        } finally {
            leave();
        }
    }

    /** Foreground (the default) or background: sparse pings in the background. */
    public void setForeground(boolean foreground) throws KurerException {
        long h = enter();
        try {
            nSetForeground(h, foreground);
        } finally {
            leave();
        }
    }

    /** The network changed: reconnect at once if the connection is wanted. */
    public void networkChanged() throws KurerException {
        long h = enter();
        try {
            nNetworkChanged(h);
        } finally {
            leave();
        }
    }

    /** The connection state now (OFFLINE, CONNECTING, ONLINE, WAITING). */
    public int state() throws KurerException {
        long h = enter();
        try {
            return nState(h, false);
        } finally {
            leave();
        }
    }

    /** Why the last attempt failed or the last connection ended (a KurerError code, or 0). */
    public int stateReason() throws KurerException {
        long h = enter();
        try {
            return nState(h, true);
        } finally {
            leave();
        }
    }

    /** Imports this device's issued chain (CertificateChain bytes). */
    public void importChain(byte[] chain) throws KurerException {
        long h = enter();
        try {
            nImportChain(h, chain);
        } finally {
            leave();
        }
    }

    /** This device's user, user@authority. */
    public String ownUser() throws KurerException {
        long h = enter();
        try {
            return new String(nOwnUser(h), StandardCharsets.UTF_8);
        } finally {
            leave();
        }
    }

    /** This device's id. */
    public int ownDevice() throws KurerException {
        long h = enter();
        try {
            return nOwnDevice(h);
        } finally {
            leave();
        }
    }

    /** Items waiting in the outbox. */
    public int outboxSize() throws KurerException {
        long h = enter();
        try {
            return nOutboxSize(h);
        } finally {
            leave();
        }
    }

    /** Benchmark: the nanoseconds n calls of kurer_state take in a C loop. */
    public long benchNativeCall(int n) throws KurerException {
        long h = enter();
        try {
            return nBenchState(h, n);
        } finally {
            leave();
        }
    }

    /** Benchmark: the nanoseconds n calls of the raw native state method take from Java. */
    public long benchJniCall(int n) throws KurerException {
        long h = enter();
        try {
            long t0 = System.nanoTime();
            int s = 0;
            for (int i = 0; i < n; i++) {
                s += nState(h, false);
            }
            long t = System.nanoTime() - t0;
            return s < 0 ? -1 : t;
        } finally {
            leave();
        }
    }

    /**
     * Benchmark: the nanoseconds n deliveries of a message (text bytes long) take through the
     * binding's on_message path (a KurerMessage made and l.onMessage called from C), on this
     * thread.
     */
    public static long benchUpcall(KurerListener l, int n, int bytes) {
        return nBenchUpcall(l, n, bytes);
    }

    /** The marking of a level ("UNCLASSIFIED", ...). */
    public static native String levelName(int level);

    /** The exception for an error code (KurerException.of). */
    static native KurerException errorFor(int code);

    /** True on a handle's library thread while a listener or completion runs. */
    static native boolean nInCallback();

    static byte[] utf8(String s) throws KurerException {
        if (s == null) {
            throw KurerException.of(KurerError.EINVAL);
        }
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /* Called by the native code: C strings come as UTF-8 bytes. */
    static String fromUtf8(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    private static native long nOpenKey(byte[] home, byte[] key) throws KurerException;

    private static native long nOpenPass(byte[] home, byte[] pass) throws KurerException;

    private static native long nCreate(byte[] home, byte[] user, int device, byte[] relay,
            byte[] relayKey, byte[] root, byte[] key) throws KurerException;

    private static native void nClose(long h);

    private static native void nSetListener(long h, KurerListener l);

    private static native void nConnectAsync(long h, int timeoutMs, KurerCallback cb)
            throws KurerException;

    private static native void nSendAsync(long h, byte[] to, int level, byte[] text,
            int timeoutMs, KurerCallback cb, boolean queue) throws KurerException;

    private static native void nRefreshAsync(long h, byte[] user, int timeoutMs, KurerCallback cb)
            throws KurerException;

    private static native void nFlushAsync(long h, int timeoutMs, KurerCallback cb)
            throws KurerException;

    private static native void nWake(long h, int timeoutMs, KurerCallback cb)
            throws KurerException;

    private static native void nConnect(long h, int timeoutMs) throws KurerException;

    private static native void nSend(long h, byte[] to, int level, byte[] text, int timeoutMs)
            throws KurerException;

    private static native long nRefresh(long h, byte[] user, int timeoutMs) throws KurerException;

    private static native void nFlush(long h, int timeoutMs) throws KurerException;

    private static native void nDisconnect(long h, boolean async);

    private static native void nSetForeground(long h, boolean foreground);

    private static native void nNetworkChanged(long h);

    private static native int nState(long h, boolean reason);

    private static native void nImportChain(long h, byte[] chain) throws KurerException;

    private static native byte[] nOwnUser(long h);

    private static native int nOwnDevice(long h);

    private static native int nOutboxSize(long h) throws KurerException;

    private static native long nBenchState(long h, int n);

    private static native long nBenchUpcall(KurerListener l, int n, int bytes);
}
