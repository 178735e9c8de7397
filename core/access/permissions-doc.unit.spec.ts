import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderPermissionsDoc } from './permissions-doc.js';
import { PERMISSIONS, ROLES, allows } from './roles.js';

describe('permission matrix', () => {
  it('docs/permissions.md is generated from it and up to date (npm run docs:permissions)', () => {
    const onDisk = readFileSync(new URL('../../docs/permissions.md', import.meta.url), 'utf8');
    expect(onDisk).toBe(renderPermissionsDoc());
  });

  it('gives admin every permission and viewer only the harmless ones', () => {
    for (const permission of Object.keys(PERMISSIONS) as (keyof typeof PERMISSIONS)[]) {
      expect(allows('admin', permission)).toBe(true);
    }
    expect(allows('viewer', 'keys:manage')).toBe(false);
    expect(allows('viewer', 'audit:read')).toBe(false);
    expect(allows('auditor', 'audit:read')).toBe(true);
    expect(allows('trader', 'projections:rebuild')).toBe(false);
  });

  it('names only known roles', () => {
    for (const rule of Object.values(PERMISSIONS))
      for (const role of rule.roles) expect(ROLES).toContain(role);
  });
});
