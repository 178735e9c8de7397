import { writeFileSync } from 'node:fs';
import { renderPermissionsDoc } from '../core/access/permissions-doc.js';

// `npm run docs:permissions`: regenerate docs/permissions.md from the permission matrix.
const target = new URL('../docs/permissions.md', import.meta.url);
writeFileSync(target, renderPermissionsDoc());
console.log(`wrote ${target.pathname}`);
