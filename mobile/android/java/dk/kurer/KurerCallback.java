package dk.kurer;

/** The completion of an asynchronous call, run once on the handle's library thread. */
public interface KurerCallback {
    /**
     * err: 0 or a KurerError code (KurerException.of(err) makes the exception). value: the
     * stored message's id for sendAsync and queueAsync (0 if none was committed), the number of
     * devices the relay listed for refreshAsync, else 0.
     */
    void onDone(int err, long value);
}
