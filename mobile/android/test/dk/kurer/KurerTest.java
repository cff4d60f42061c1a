package dk.kurer;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The JNI binding against a real relay (mobile/android/test/java_flow.sh prepares it): two
 * enrolled homes in one JVM exchange N messages each way through callbacks on their library
 * threads, in order and exactly once; a CONFIDENTIAL send to a RESTRICTED recipient is refused
 * as a KurerException ECLEARANCE; every error code maps to an exception; a raw-key home is
 * created and opened; figures (messages/s, JNI call costs) are printed as JSON lines.
 *
 * usage: KurerTest ANNA_HOME BOB_HOME ROOT_CRT RELAY_HOST:PORT RELAY_KEY_HEX SCRATCH_DIR
 * (the homes' passphrase in KURER_PASSPHRASE). Exits 0 only if every check holds.
 */
public final class KurerTest {
    static final int N = Integer.getInteger("kurer.test.messages", 1000);
    static final int TIMEOUT_MS = 60000;
    static final String ANNA = "anna@fm.dk";
    static final String BOB = "bob@sk.dk";
    static int passed;
    static int failed;

    static void check(boolean ok, String what) {
        if (ok) {
            passed++;
            System.out.println("ok   " + what);
        } else {
            failed++;
            System.out.println("FAIL " + what);
        }
        System.out.flush();
    }

    interface Action {
        void run() throws KurerException;
    }

    /** Runs a and checks that it throws a KurerException with code. */
    static KurerException expectError(int code, String what, Action a) {
        try {
            a.run();
            check(false, what + ": no exception (want " + code + ")");
        } catch (KurerException e) {
            check(e.code() == code, what + ": " + e.name() + " (" + e.code() + ")");
            return e;
        }
        return null;
    }

    /* The text of message i from a sender: non-ASCII and a character outside the BMP, which
     * JNI's modified UTF-8 would get wrong. */
    static String text(String from, int i) {
        return "besked " + i + " fra " + from + " \u00e6\u00f8\u00e5 \uD834\uDD1E";
    }

    /** One side: the listener of a handle, counting what comes from the other side. */
    static final class Peer implements KurerListener {
        final String user;
        final String other;
        Kurer k;
        volatile Thread libThread;
        volatile String wrongThread;
        volatile String firstError;
        int nextSeq; /* touched on the library thread only */
        final AtomicInteger received = new AtomicInteger();
        final AtomicInteger online = new AtomicInteger();
        final AtomicInteger queueEmpty = new AtomicInteger();
        final List<String> extra = Collections.synchronizedList(new ArrayList<String>());
        final CountDownLatch all = new CountDownLatch(1);
        volatile long lastAt;

        Peer(String user, String other) {
            this.user = user;
            this.other = other;
        }

        private void onLibraryThread(String what) {
            Thread t = Thread.currentThread();
            if (libThread == null) {
                libThread = t;
            }
            if (t != libThread || !"kurer-library".equals(t.getName())) {
                wrongThread = what + " on " + t.getName();
            }
        }

        private void error(String e) {
            if (firstError == null) {
                firstError = e;
            }
        }

        @Override
        public void onMessage(KurerMessage m) {
            onLibraryThread("onMessage");
            if (!m.body.startsWith("besked ")) {
                extra.add(m.body);
                return;
            }
            int seq = Integer.parseInt(m.body.split(" ")[1]);
            if (seq != nextSeq) {
                error(user + " got message " + seq + ", want " + nextSeq);
            } else if (!m.body.equals(text(other, seq)) || !m.peer.equals(other) || m.outgoing
                    || m.level != Kurer.UNCLASSIFIED || m.state != KurerMessage.RECEIVED
                    || m.id.length != 16) {
                error(user + " got message " + seq + " wrong: " + m.body + " from " + m.peer);
            }
            nextSeq = seq + 1;
            lastAt = System.nanoTime();
            if (received.incrementAndGet() == N) {
                all.countDown();
            }
        }

        @Override
        public void onRefused(String from, int device, int err) {
            onLibraryThread("onRefused");
            error(user + ": refused from " + from + "/" + device + ": " + err);
        }

        @Override
        public void onState(int state, int reason) {
            onLibraryThread("onState");
            if (state == Kurer.ONLINE) {
                online.incrementAndGet();
            }
        }

        @Override
        public void onQueueEmpty() {
            onLibraryThread("onQueueEmpty");
            queueEmpty.incrementAndGet();
        }
    }

    /** Sends N messages one after another, each from the completion of the one before. */
    static final class Sender implements KurerCallback {
        final Peer from;
        final AtomicInteger next = new AtomicInteger();
        final CountDownLatch done = new CountDownLatch(1);
        volatile String error;
        long lastId;

        Sender(Peer from) {
            this.from = from;
        }

        void send(int i) {
            try {
                from.k.sendAsync(from.other, Kurer.UNCLASSIFIED, text(from.user, i), TIMEOUT_MS,
                        this);
            } catch (KurerException e) {
                error = "sendAsync " + i + ": " + e.getMessage();
                done.countDown();
            }
        }

        @Override
        public void onDone(int err, long id) {
            if (!"kurer-library".equals(Thread.currentThread().getName())) {
                error = "completion on " + Thread.currentThread().getName();
            }
            if (err != 0 || id <= lastId) {
                error = "message " + next.get() + ": " + KurerException.of(err).getMessage()
                        + " id " + id;
                done.countDown();
                return;
            }
            lastId = id;
            int i = next.incrementAndGet();
            if (i == N) {
                done.countDown();
            } else {
                send(i);
            }
        }
    }

    /** A completion whose result the main thread waits for. */
    static final class Wait implements KurerCallback {
        final CountDownLatch done = new CountDownLatch(1);
        volatile int err = 1;
        volatile long value;

        @Override
        public void onDone(int e, long v) {
            err = e;
            value = v;
            done.countDown();
        }

        int await(int seconds) throws InterruptedException {
            return done.await(seconds, TimeUnit.SECONDS) ? err : KurerError.ETIMEOUT;
        }
    }

    static void checkErrors() throws Exception {
        int n = 0;
        boolean allOk = true;
        for (Field f : KurerError.class.getFields()) {
            if (!Modifier.isStatic(f.getModifiers()) || f.getType() != int.class) {
                continue;
            }
            int code = f.getInt(null);
            KurerException e = KurerException.of(code);
            boolean ok = e.code() == code && e.name().equals(f.getName())
                    && e.getMessage().startsWith(f.getName() + ": ")
                    && (code == 0) == e.category().equals("NONE")
                    && "NONE USAGE IO PROTO CRYPTO STORAGE POLICY AGAIN".contains(e.category());
            if (!ok) {
                System.out.println("  " + code + " " + e.name() + " " + e.category());
            }
            allOk &= ok;
            n++;
        }
        check(allOk && n == KurerError.ALL.length && n > 40,
                "every error code maps to a KurerException with its name and category (" + n
                        + " codes)");
        KurerException e = KurerException.of(KurerError.ECLEARANCE);
        check(e.category().equals("POLICY") && !e.isTemporary(), "ECLEARANCE is POLICY");
        check(KurerException.of(KurerError.ELOCKED).isTemporary(), "ELOCKED is AGAIN");
    }

    /** A home protected by a raw key (as phones open theirs), made and opened through Java. */
    static void checkRawKeyHome(String root, String relay, String relayKeyHex, String scratch)
            throws Exception {
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        byte[] relayKey = new byte[32];
        for (int i = 0; i < 32; i++) {
            relayKey[i] = (byte) Integer.parseInt(relayKeyHex.substring(2 * i, 2 * i + 2), 16);
        }
        byte[] rootBytes = Files.readAllBytes(Paths.get(root));
        String home = scratch + "/carol";
        Kurer c = Kurer.create(home, "carol@sk.dk", 1, relay, relayKey, rootBytes, key);
        check(c.ownUser().equals("carol@sk.dk") && c.ownDevice() == 1, "create with a raw key");
        check(Files.exists(Paths.get(home, "device.csr")), "create wrote device.csr");
        expectError(KurerError.ESTATE, "connectAsync before enrolment", () ->
                c.connectAsync(1000, null));
        expectError(KurerError.ELOCKED, "a second open of an open home", () ->
                Kurer.open(home, key).close());
        c.close();
        byte[] wrong = key.clone();
        wrong[0] ^= 1;
        expectError(KurerError.EPASSPHRASE, "open with a wrong key", () ->
                Kurer.open(home, wrong).close());
        expectError(KurerError.EINVAL, "open with a 31-byte key", () ->
                Kurer.open(home, new byte[31]).close());
        expectError(KurerError.ENOENT, "open a folder without a home", () ->
                Kurer.open(scratch + "/nobody", key).close());
        Kurer again = Kurer.open(home, key);
        check(again.ownUser().equals("carol@sk.dk"), "open with the raw key");
        again.close();
    }

    static double exchange(Peer anna, Peer bob) throws Exception {
        Sender sa = new Sender(anna);
        Sender sb = new Sender(bob);
        long t0 = System.nanoTime();
        sa.send(0);
        sb.send(0);
        boolean sent = sa.done.await(240, TimeUnit.SECONDS) && sb.done.await(240, TimeUnit.SECONDS);
        boolean got = anna.all.await(60, TimeUnit.SECONDS) && bob.all.await(60, TimeUnit.SECONDS);
        long end = got ? Math.max(anna.lastAt, bob.lastAt) : System.nanoTime();
        double seconds = (end - t0) / 1e9;
        check(sent && sa.error == null && sb.error == null, N + " sends each way completed"
                + (sa.error != null ? ": " + sa.error : "") + (sb.error != null ? ": " + sb.error
                        : ""));
        check(got, N + " messages each way arrived (anna got " + anna.received.get() + ", bob got "
                + bob.received.get() + ")");
        check(anna.firstError == null && bob.firstError == null,
                "every message once, in the order sent, text intact"
                        + (anna.firstError != null ? ": " + anna.firstError : "")
                        + (bob.firstError != null ? ": " + bob.firstError : ""));
        check(anna.wrongThread == null && bob.wrongThread == null && anna.libThread != null
                && bob.libThread != null && anna.libThread != bob.libThread,
                "callbacks on each handle's own library thread, attached as kurer-library"
                        + (anna.wrongThread != null ? ": " + anna.wrongThread : "")
                        + (bob.wrongThread != null ? ": " + bob.wrongThread : ""));
        return seconds;
    }

    static void checkRefusal(Kurer a) throws Exception {
        KurerException e = expectError(KurerError.ECLEARANCE,
                "CONFIDENTIAL to a RESTRICTED recipient (blocking send)", () ->
                        a.send(BOB, Kurer.CONFIDENTIAL, "hemmeligt", TIMEOUT_MS));
        if (e != null) {
            KurerRefusal r = e.refusal();
            check(e.name().equals("ECLEARANCE") && e.category().equals("POLICY") && r != null
                    && r.by == KurerRefusal.BY_RECIPIENT && r.user.equals(BOB)
                    && r.limit == Kurer.RESTRICTED, "the refusal names bob's certificate: " + r);
        }
        Wait w = new Wait();
        a.sendAsync(BOB, Kurer.CONFIDENTIAL, "hemmeligt", TIMEOUT_MS, w);
        check(w.await(60) == KurerError.ECLEARANCE && w.value == 0,
                "CONFIDENTIAL refused in the completion of sendAsync, nothing stored");
        expectError(KurerError.ELIMIT, "a text over TEXT_MAX", () ->
                a.sendAsync(BOB, Kurer.UNCLASSIFIED, new String(new char[Kurer.TEXT_MAX + 1])
                        .replace('\0', 'x'), TIMEOUT_MS, null));
        expectError(KurerError.EINVAL, "a text with a NUL", () ->
                a.sendAsync(BOB, Kurer.UNCLASSIFIED, "a\u0000b", TIMEOUT_MS, null));
        expectError(KurerError.ESUBJECT, "a malformed recipient", () ->
                a.sendAsync("nobody", Kurer.UNCLASSIFIED, "x", TIMEOUT_MS, null));
    }

    /** Calls that a callback must not make, and a listener that throws. */
    static void checkCallbackRules(Peer anna, Peer bob) throws Exception {
        final String[] got = new String[2];
        Wait w = new Wait();
        anna.k.flushAsync(TIMEOUT_MS, (err, v) -> {
            try {
                anna.k.send(BOB, Kurer.UNCLASSIFIED, "x", 1000);
                got[0] = "send returned";
            } catch (KurerException e) {
                got[0] = e.name();
            }
            try {
                anna.k.close();
                got[1] = "close returned";
            } catch (KurerException e) {
                got[1] = e.name();
            }
            w.onDone(err, v);
        });
        check(w.await(60) == 0 && "ESTATE".equals(got[0]) && "ESTATE".equals(got[1]),
                "from a completion, a blocking send and close throw ESTATE (" + got[0] + ", "
                        + got[1] + ")");
        CountDownLatch thrown = new CountDownLatch(1);
        bob.k.setListener(new KurerListener() {
            @Override
            public void onMessage(KurerMessage m) {
                thrown.countDown();
                throw new IllegalStateException("expected: a listener that throws");
            }

            @Override
            public void onRefused(String from, int device, int err) {
            }

            @Override
            public void onState(int state, int reason) {
            }

            @Override
            public void onQueueEmpty() {
            }
        });
        anna.k.send(BOB, Kurer.UNCLASSIFIED, "kast", TIMEOUT_MS);
        check(thrown.await(60, TimeUnit.SECONDS), "a listener that throws was called");
        bob.k.setListener(bob);
        anna.k.send(BOB, Kurer.UNCLASSIFIED, "efter kastet \uD83D\uDE00", TIMEOUT_MS);
        long until = System.nanoTime() + 60_000_000_000L;
        while (!bob.extra.contains("efter kastet \uD83D\uDE00") && System.nanoTime() < until) {
            Thread.sleep(20);
        }
        check(bob.extra.contains("efter kastet \uD83D\uDE00") && !bob.extra.contains("kast"),
                "after it, the next message arrives (and the one it threw on is not given again)");
    }

    static void checkMobileCalls(Peer anna, Peer bob) throws Exception {
        int before = anna.online.get();
        anna.k.setForeground(false);
        anna.k.networkChanged();
        long until = System.nanoTime() + 30_000_000_000L;
        while (anna.online.get() == before && System.nanoTime() < until) {
            Thread.sleep(20);
        }
        check(anna.online.get() > before, "networkChanged: online again");
        anna.k.setForeground(true);
        check(anna.k.refresh(BOB, TIMEOUT_MS) == 1, "refresh: bob has one device");
        bob.k.disconnect();
        anna.k.send(BOB, Kurer.UNCLASSIFIED, "vaagn op", TIMEOUT_MS);
        Wait w = new Wait();
        bob.k.wake(TIMEOUT_MS, w);
        check(w.await(60) == 0 && bob.extra.contains("vaagn op"), "wake: takes what waits");
        check(bob.k.outboxSize() == 0 && anna.k.outboxSize() == 0, "outboxes empty");
    }

    static String bench(Peer anna, double seconds) throws Exception {
        Kurer k = anna.k;
        int n = 2_000_000;
        for (int i = 0; i < 3; i++) { /* warm up the JIT */
            k.benchJniCall(n / 4);
            k.benchNativeCall(n / 4);
        }
        double c = k.benchNativeCall(n) / (double) n;
        double jni = k.benchJniCall(n) / (double) n;
        long t0 = System.nanoTime();
        int s = 0;
        for (int i = 0; i < n; i++) {
            s += k.state();
        }
        double pub = (System.nanoTime() - t0) / (double) n;
        check(s >= 0, "state()");
        KurerListener noop = new KurerListener() {
            @Override
            public void onMessage(KurerMessage m) {
            }

            @Override
            public void onRefused(String from, int device, int err) {
            }

            @Override
            public void onState(int state, int reason) {
            }

            @Override
            public void onQueueEmpty() {
            }
        };
        int m = 200_000;
        Kurer.benchUpcall(noop, m / 4, 64);
        double up = Kurer.benchUpcall(noop, m, 64) / (double) m;
        double perMessage = 2 * N / seconds;
        /* A message costs one call down (sendAsync) and two up (its completion at the sender,
         * onMessage at the receiver). */
        double overhead = (pub - c) + 2 * up;
        String f = String.format(Locale.ROOT,
                "{\"figure\":\"jni_messages\",\"messages\":%d,\"seconds\":%.3f,"
                        + "\"messages_per_s\":%.1f}%n"
                        + "{\"figure\":\"jni_call\",\"calls\":%d,\"c_kurer_state_ns\":%.1f,"
                        + "\"jni_native_state_ns\":%.1f,\"java_state_ns\":%.1f,"
                        + "\"jni_overhead_ns\":%.1f}%n"
                        + "{\"figure\":\"jni_upcall\",\"calls\":%d,\"on_message_64_bytes_ns\":%.1f}%n"
                        + "{\"figure\":\"jni_overhead_per_message\",\"ns\":%.1f,"
                        + "\"message_ns\":%.0f,\"share\":%.5f}%n",
                2 * N, seconds, perMessage, n, c, jni, pub, pub - c, m, up, overhead,
                1e9 / perMessage, overhead / (1e9 / perMessage));
        return f;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 6 || System.getenv("KURER_PASSPHRASE") == null) {
            System.err.println("usage: KurerTest ANNA BOB ROOT RELAY RELAY_KEY_HEX SCRATCH"
                    + " (passphrase in KURER_PASSPHRASE)");
            System.exit(2);
        }
        String pass = System.getenv("KURER_PASSPHRASE");
        checkErrors();
        checkRawKeyHome(args[2], args[3], args[4], args[5]);

        Peer anna = new Peer(ANNA, BOB);
        Peer bob = new Peer(BOB, ANNA);
        anna.k = Kurer.open(args[0], pass);
        bob.k = Kurer.open(args[1], pass);
        check(anna.k.ownUser().equals(ANNA) && bob.k.ownUser().equals(BOB), "open both homes");
        expectError(KurerError.ELOCKED, "anna's home while open", () ->
                Kurer.open(args[0], pass).close());
        anna.k.setListener(anna);
        bob.k.setListener(bob);
        Wait ca = new Wait();
        anna.k.connectAsync(TIMEOUT_MS, ca);
        bob.k.connect(TIMEOUT_MS);
        check(ca.await(60) == 0 && bob.k.state() == Kurer.ONLINE, "connected (async and blocking)");

        double seconds = exchange(anna, bob);
        checkRefusal(anna.k);
        checkCallbackRules(anna, bob);
        checkMobileCalls(anna, bob);
        String figures = bench(anna, seconds);

        Thread ta = anna.libThread;
        Thread tb = bob.libThread;
        anna.k.close();
        bob.k.close();
        anna.k.close(); /* idempotent */
        expectError(KurerError.ECLOSED, "a call after close", () -> anna.k.state());
        if (ta != null && tb != null) {
            ta.join(10000);
            tb.join(10000);
            check(!ta.isAlive() && !tb.isAlive(), "the library threads detached when they ended");
        }
        System.out.print(figures);
        System.out.println(passed + " passed, " + failed + " failed");
        System.exit(failed == 0 && passed > 0 ? 0 : 1);
    }
}
