import type { CoreV1Event, V1Node, V1Pod, V1Status } from '@kubernetes/client-node';
// client-node does not re-export its serializer; this deep import is pinned by the 1.4 lockfile.
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';

/**
 * The JSON form of a client-node model: the generated classes type timestamps as `Date`, but on
 * the wire (and in this server's store) they are RFC 3339 strings.
 */
export type Wire<T> = T extends Date
  ? string
  : T extends Array<infer U>
    ? Array<Wire<U>>
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

export type PodJson = Wire<V1Pod>;
export type EventJson = Wire<CoreV1Event>;
export type NodeJson = Wire<V1Node>;
export type StatusJson = Wire<V1Status>;

/** Any namespaced or cluster-scoped object the fake stores. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: { [key: string]: string };
  };
}


/** The wire JSON as the client would hand it to its caller (timestamps as `Date`). */
export function toClientPod(json: PodJson): V1Pod {
  return ObjectSerializer.deserialize(structuredClone(json), 'V1Pod', '') as V1Pod;
}

export function toClientEvent(json: EventJson): CoreV1Event {
  return ObjectSerializer.deserialize(structuredClone(json), 'CoreV1Event', '') as CoreV1Event;
}
