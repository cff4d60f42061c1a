package dk.kurer;

/**
 * A libkurer error: the code (a negative KurerError value), its symbolic name ("ECLEARANCE"),
 * its category ("USAGE", "IO", "PROTO", "CRYPTO", "STORAGE", "POLICY", "AGAIN") and the
 * library's message, which is safe to show. All come from the C library's one list of codes
 * (kurer/error.h), so every code maps to exactly one exception.
 */
public class KurerException extends Exception {
    private static final long serialVersionUID = 1L;

    private final int code;
    private final String name;
    private final String category;
    private KurerRefusal refusal;

    public KurerException(int code, String name, String category, String message) {
        super(name + ": " + message);
        this.code = code;
        this.name = name;
        this.category = category;
    }

    /** The exception for a code, with the library's name, category and message. */
    public static KurerException of(int code) {
        return Kurer.errorFor(code);
    }

    public int code() {
        return code;
    }

    public String name() {
        return name;
    }

    public String category() {
        return category;
    }

    /** Temporary (category AGAIN): worth retrying later. */
    public boolean isTemporary() {
        return "AGAIN".equals(category);
    }

    /** Whose certificate refused, for a blocking send's policy errors; else null. */
    public KurerRefusal refusal() {
        return refusal;
    }

    /* Called by the native code before the exception is thrown. */
    void setRefusal(int by, String user, int device, int limit) {
        refusal = new KurerRefusal(by, user, device, limit);
    }
}
