// The component's entry: the host's logging import, and the `api` export.
import { log } from 'openconnectors:connector/logging@0.2.0';
import { defineConnector, setLogger, warmUp } from '../../guest-sdk/js/connector-sdk.js';
import { github, sample } from './connector.js';

export const api = defineConnector(github);
// At build time: one sample call, so that what a call runs is compiled in the snapshot
// rather than in every fresh instance (see `warmUp`). Before `setLogger`: the host's
// imports are not there at build time.
await warmUp(api, await sample());
setLogger(log);
