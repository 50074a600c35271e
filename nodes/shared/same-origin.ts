/** Same-origin checks live with the console's library code; the admin routes of every node use them. */
export * from '../../src/console/same-origin.js';
