// What the global setup (test/harness.js) hands to the test files.
import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    pgworld: { serviceUrl: string; databaseUrl: string; adminUrl: string };
  }
}
