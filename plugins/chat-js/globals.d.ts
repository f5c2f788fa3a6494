// Build-time constants that esbuild inlines (`--define`), for the type checker.

/** The chat marker (env RTM_CHAT_MARK at build time); absent: "v1". */
declare const RTM_CHAT_MARK: string | undefined;
