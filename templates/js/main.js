// The component's entry: the host's logging import, and the `api` export. Leave it as is;
// the connector's logic is in connector.js.
import { log } from 'openconnectors:connector/logging@0.2.0';
import { defineConnector, setLogger, warmUp } from './connector-sdk.js';
import { connector, sample } from './connector.js';

export const api = defineConnector(connector);
// At build time: one sample call, so that what a call runs is compiled in the snapshot
// rather than in every fresh instance (see `warmUp`). Before `setLogger`: the host's
// imports are not there at build time.
await warmUp(api, await sample());
setLogger(log);
