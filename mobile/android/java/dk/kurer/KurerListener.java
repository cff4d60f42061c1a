package dk.kurer;

/**
 * The events of a handle (kurer_events in kurer.h). Every method runs on the handle's library
 * thread, one at a time, in order; keep them short and hand longer work to a thread of your own.
 * A method may call any method of {@link Kurer} except the blocking network calls (they throw
 * KurerException ESTATE there) and {@link Kurer#close()}. An exception thrown here is printed
 * and cleared by the binding; it does not reach the library.
 */
public interface KurerListener {
    /** A message was committed to the store (received, quarantined, or a sync copy). */
    void onMessage(KurerMessage m);

    /** An envelope from (from, device) was dropped for good, or held for later; err says why. */
    void onRefused(String from, int device, int err);

    /** The connection state changed (Kurer.OFFLINE ... Kurer.WAITING); reason: why it ended. */
    void onState(int state, int reason);

    /** Everything the relay held at connect has been given. */
    void onQueueEmpty();
}
