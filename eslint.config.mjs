// ESLint with typescript-eslint: the recommended rules, type-aware where they
// catch real bugs (floating promises, misused promises). `npm run lint`; CI runs it.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/**", "toolchain/**", "coverage/**", ".state/**", ".data/**", "**/*.mjs", "seed/releases/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false } }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      // Dynamic providers and test doubles need `any` in a few documented places.
      "@typescript-eslint/no-explicit-any": "off",
      // Our wrapping errors replace the cause's text on purpose: redacted (no URL, no password) and saying what to do.
      "preserve-caught-error": "off",
    },
  },
);
