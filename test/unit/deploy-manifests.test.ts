import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { loadAll } from 'js-yaml';
import { Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';

const file = new URL('../../docker/kubernetes/podflow.yaml', import.meta.url);

const MODELS: Record<string, new (o: never) => { validate(): void }> = {
  Namespace: Namespace as never,
  ServiceAccount: ServiceAccount as never,
  Role: Role as never,
  RoleBinding: RoleBinding as never,
  Deployment: Deployment as never,
  Service: Service as never,
};

describe('docker/kubernetes/podflow.yaml', () => {
  const docs = loadAll(readFileSync(file, 'utf8')) as { kind: string; metadata: { name: string }; spec?: any }[];

  it('validates every object against the official Kubernetes schema', () => {
    expect(docs.map((d) => d.kind)).toEqual(['Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'Deployment', 'Deployment', 'Deployment', 'Service']);
    for (const d of docs) expect(() => new MODELS[d.kind](d as never).validate(), `${d.kind} ${d.metadata.name}`).not.toThrow();
  });

  it('gives the worker exactly the pod permissions the pod operator documents', () => {
    const role = docs.find((d) => d.kind === 'Role') as unknown as { rules: { resources: string[]; verbs: string[] }[] };
    expect(role.rules.map((r) => [r.resources.join(), r.verbs.join()])).toEqual([
      ['pods', 'create,get,list,watch,delete'],
      ['pods/log', 'get'],
      ['events', 'list,watch'],
    ]);
  });

  it('runs every Podflow container as non-root without privilege escalation', () => {
    for (const d of docs.filter((x) => x.kind === 'Deployment')) {
      expect(d.spec.template.spec.securityContext.runAsNonRoot, d.metadata.name).toBe(true);
      for (const c of d.spec.template.spec.containers) expect(c.securityContext.allowPrivilegeEscalation, c.name).toBe(false);
    }
  });
});
