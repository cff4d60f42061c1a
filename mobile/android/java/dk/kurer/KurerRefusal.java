package dk.kurer;

/** Whose certificate (or the root's ceiling) stands in the way of a level (kurer_refusal). */
public final class KurerRefusal {
    public static final int BY_NONE = 0;
    public static final int BY_CEILING = 1;
    public static final int BY_SENDER = 2;
    public static final int BY_RECIPIENT = 3;

    public final int by;
    /** user@authority whose certificate refuses (BY_SENDER, BY_RECIPIENT), else "". */
    public final String user;
    public final int device;
    /** The level that certificate or ceiling allows, or 0 if it is not valid. */
    public final int limit;

    KurerRefusal(int by, String user, int device, int limit) {
        this.by = by;
        this.user = user;
        this.device = device;
        this.limit = limit;
    }

    @Override
    public String toString() {
        return "refused by " + by + " " + user + "/" + device + " (allows " + limit + ")";
    }
}
