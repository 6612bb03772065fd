// Status codes returned by every exported function that can fail on user input or limits.
// The TypeScript side (bindings/status.ts) maps each code to a CairnError with a full message;
// keeping them here, in one file, mirrors the AssemblyScript standard library's util/error.ts.
// Zero and positive values are results; negative values are errors.

/** The operation would take the shard past its configured memory cap. Nothing was changed. */
export const E_MEMORY_CAP: i32 = -1;
/** A store handle that does not exist (closed or never opened). */
export const E_BAD_HANDLE: i32 = -2;
/** An argument outside its documented range (row count, key length, field count). */
export const E_BAD_ARGUMENT: i32 = -3;
/** A snapshot being loaded does not match its declared layout. */
export const E_BAD_SNAPSHOT: i32 = -4;
/** The operation needs a different store kind (for example a value-state call on an aggregate store). */
export const E_WRONG_KIND: i32 = -5;
/** A table or buffer would pass a hard limit (ROWS_MAX, KEY_BYTES_MAX). */
export const E_LIMIT: i32 = -6;
