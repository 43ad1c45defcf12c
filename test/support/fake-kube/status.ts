import type { StatusJson } from './wire.ts';

/**
 * A failure the fake API answers with a real `Status` body, the way the API server reports every
 * error (`kind: Status`, `status: Failure`, `reason`, `code`).
 */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusJson['details'],
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }

  toStatus(): StatusJson {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

export function notFound(kind: string, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${kind} "${name}" not found`, { name, kind });
}

export function alreadyExists(kind: string, name: string): ApiError {
  return new ApiError(409, 'AlreadyExists', `${kind} "${name}" already exists`, { name, kind });
}

export function badRequest(message: string): ApiError {
  return new ApiError(400, 'BadRequest', message);
}

/** Resource version too old: what a watch or a continued list gets after compaction. */
export function expired(message: string): ApiError {
  return new ApiError(410, 'Expired', message);
}

export interface FieldCause {
  field: string;
  type: 'FieldValueRequired' | 'FieldValueInvalid' | 'FieldValueDuplicate' | 'FieldValueNotSupported';
  detail: string;
}

/** 422 Invalid, worded like the API server's field validation. */
export function invalid(kind: string, name: string, causes: FieldCause[]): ApiError {
  const label = { FieldValueRequired: 'Required value', FieldValueInvalid: 'Invalid value', FieldValueDuplicate: 'Duplicate value', FieldValueNotSupported: 'Unsupported value' };
  const text = (c: FieldCause): string => `${c.field}: ${label[c.type]}${c.detail ? `: ${c.detail}` : ''}`;
  const summary = causes.length === 1 ? text(causes[0]) : `[${causes.map(text).join(', ')}]`;
  return new ApiError(422, 'Invalid', `${kind} "${name}" is invalid: ${summary}`, {
    name,
    kind,
    causes: causes.map((c) => ({ reason: c.type, message: text(c).slice(c.field.length + 2), field: c.field })),
  });
}

/** The Status the API server sends for an injected fault status code. */
export function faultStatus(code: number, path: string, retryAfterSeconds?: number): ApiError {
  const retry = retryAfterSeconds === undefined ? undefined : { retryAfterSeconds };
  switch (code) {
    case 409: {
      const name = path.split('/').filter(Boolean).pop() ?? '';
      return new ApiError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on pods "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        { name, kind: 'pods', ...retry },
        retryAfterSeconds,
      );
    }
    case 429:
      return new ApiError(
        429,
        'TooManyRequests',
        'the server has received too many requests and has asked us to try again later',
        { retryAfterSeconds: retryAfterSeconds ?? 1 },
        retryAfterSeconds ?? 1,
      );
    case 500:
      return new ApiError(
        500,
        'InternalError',
        'an error on the server ("etcdserver: request timed out") has prevented the request from succeeding',
        { causes: [{ reason: 'UnexpectedServerResponse', message: 'etcdserver: request timed out' }], ...retry },
        retryAfterSeconds,
      );
    case 503:
      return new ApiError(503, 'ServiceUnavailable', 'the server is currently unable to handle the request', { ...retry }, retryAfterSeconds);
    case 410:
      return expired('too old resource version');
    default:
      return new ApiError(code, 'Unknown', `injected fault: status ${code}`, { ...retry }, retryAfterSeconds);
  }
}
