// The component's entry: the host's logging import, and the `api` export. Leave it as is;
// the connector's logic is in connector.js.
import { log } from 'openconnectors:connector/logging@0.2.0';
import { defineConnector, setLogger } from './connector-sdk.js';
import { connector } from './connector.js';

setLogger(log);
export const api = defineConnector(connector);
