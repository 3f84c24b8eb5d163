// eslint: neostandard (the `standard` style the code follows) with its TypeScript rules (typescript-eslint).
import globals from 'globals'
import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', 'test-results/**', '.prof/**', '.dsm-data/**'] }),
  {
    rules: {
      // `void promise` marks a promise whose failures are handled where it is made (its own catch): allowed as a statement only.
      'no-void': ['error', { allowAsStatement: true }],
      // Loops here wait on flags that other tasks set (an async client loop, a stream's 'close'): the rule cannot see them.
      'no-unmodified-loop-condition': 'off'
    }
  },
  {
    files: ['**/*.ts'],
    rules: {
      // `for await (const _ of query)` drains an iterator whose items nobody needs.
      '@typescript-eslint/no-unused-vars': ['error', { args: 'none', caughtErrors: 'none', ignoreRestSiblings: true, vars: 'all', varsIgnorePattern: '^_' }]
    }
  },
  {
    // The web page's script runs in the browser.
    files: ['src/http/ui/**/*.js'],
    languageOptions: { globals: globals.browser }
  }
]
