import { PERMISSIONS, ROLES, allows, type Permission } from './roles.js';

/** docs/permissions.md, generated from the matrix so the two cannot drift apart. */
export function renderPermissionsDoc(): string {
  const permissions = Object.keys(PERMISSIONS) as Permission[];
  const header = `| permission | ${ROLES.join(' | ')} | what it allows |`;
  const rule = `| --- | ${ROLES.map(() => ':---:').join(' | ')} | --- |`;
  const rows = permissions.map(
    (permission) =>
      `| \`${permission}\` | ${ROLES.map((role) => (allows(role, permission) ? '✔' : '')).join(' | ')} | ${PERMISSIONS[permission].description} |`,
  );
  return [
    '# Permissions',
    '',
    'Generated from `core/access/roles.ts` by `npm run docs:permissions`; a test fails when this',
    'file is stale. Every HTTP route declares one of these permissions (or is public: health,',
    'metrics, the API docs); a request whose key lacks it gets 403, one without a valid key 401.',
    '',
    header,
    rule,
    ...rows,
    '',
  ].join('\n');
}
