/** Reconnection back-off settings. */
export interface BackoffOptions {
  /** Delay before the first retry. Default 500 ms. */
  readonly initialDelayMs?: number;
  /** Upper bound for any delay. Default 10 000 ms. */
  readonly maxDelayMs?: number;
  /** Growth per failed attempt. Default 2. */
  readonly factor?: number;
  /**
   * Spread as a fraction of the delay (0..1). Default 0.5. Jitter keeps a
   * whole room of clients from reconnecting in lock-step after a host
   * restart.
   */
  readonly jitter?: number;
  /** Give up after this many consecutive failed attempts. Default: never. */
  readonly maxAttempts?: number;
}

/**
 * Exponential back-off with jitter. `random` is injectable so tests can pin
 * the delays.
 */
export class Backoff {
  private attempt = 0;
  private readonly initial: number;
  private readonly max: number;
  private readonly factor: number;
  private readonly jitter: number;
  readonly maxAttempts: number;

  constructor(
    options: BackoffOptions = {},
    private readonly random: () => number = Math.random,
  ) {
    this.initial = Math.max(0, options.initialDelayMs ?? 500);
    this.max = Math.max(this.initial, options.maxDelayMs ?? 10_000);
    this.factor = Math.max(1, options.factor ?? 2);
    this.jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
    this.maxAttempts = options.maxAttempts ?? Number.POSITIVE_INFINITY;
  }

  /** Failed attempts since the last {@link Backoff.reset}. */
  get attempts(): number {
    return this.attempt;
  }

  /** Whether another attempt is allowed. */
  get exhausted(): boolean {
    return this.attempt >= this.maxAttempts;
  }

  /** The delay before the next attempt; counts that attempt. */
  next(): number {
    const base = Math.min(this.max, this.initial * this.factor ** this.attempt);
    this.attempt += 1;
    const spread = base * this.jitter * (2 * this.random() - 1);
    return Math.round(Math.min(this.max, Math.max(0, base + spread)));
  }

  /** Call after a successful connect. */
  reset(): void {
    this.attempt = 0;
  }
}
